"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ended by
NUL on file descriptors 3 and 4), with nothing to install beyond Debian's chromium: open a page, evaluate script in
it, collect its uncaught exceptions and console errors."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """The Chromium program (fails under CI, skips elsewhere, when it is not installed)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def _above_four(fd: int) -> int:
    """The same pipe end on a descriptor above 4 (the original is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 5)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium with a fresh profile, and one page in it."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium's ends moved above 4, so that neither redirection below overwrites the other's source.
        to_chrome_r, from_chrome_w = (_above_four(fd) for fd in (to_chrome_r, from_chrome_w))
        # bash (dash reads one-digit descriptors only) hands our pipe ends to Chromium as descriptors 3 (its input)
        # and 4 (its output).
        command = " ".join([chromium(), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
                            f"3<&{to_chrome_r}", f"4>&{from_chrome_w}", "about:blank"])
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command}"], pass_fds=(to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session = ""

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chrome, 65536):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._arrived:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._arrived.notify_all()

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send a command (to the page once one is open) and return its result."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self._next not in self._replies:
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"no answer from Chromium to {method}"
                self._arrived.wait(left)
            reply = self._replies.pop(self._next)
        assert "error" not in reply, reply
        return dict(reply.get("result", {}))

    def open(self, url: str) -> None:
        """Open ``url`` in a new page and attach to it, with its console and exceptions reported."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a script expression in the page (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors of the page so far."""
        with self._arrived:
            events = list(self.events)
        found = [json.dumps(e["params"])[:300] for e in events if e.get("method") == "Runtime.exceptionThrown"]
        found += [e["params"]["entry"].get("text", "") for e in events
                  if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]
        return found

    def close(self) -> None:
        """Stop Chromium and its children."""
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        finally:
            os.close(self._to_chrome)
            self._reader.join(10)  # it ends at the pipe's end of file, once Chromium is gone
            if not self._reader.is_alive():
                os.close(self._from_chrome)
