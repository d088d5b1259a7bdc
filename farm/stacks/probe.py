"""Small HTTP and TCP probes the drivers use for health, metrics and cache resets (stdlib only)."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from farm.stacks.driver import Endpoint

MAX_JSON_BYTES = 1_000_000  # a metrics document is a few hundred bytes; a larger one is not one


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether GET url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException):  # incl. a non-HTTP answer
        return False


def http_json(url: str, method: str = "GET", timeout: float = 5.0, limit: int = MAX_JSON_BYTES,
              headers: dict[str, str] | None = None) -> Any:
    """The JSON body of a request, read within ``timeout`` in all; OSError when it fails or is too slow,
    ValueError when the body is not JSON or larger than ``limit`` bytes."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None, headers=headers or {})
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = _read_until(resp, deadline, limit)
    except urllib.error.HTTPError as exc:
        raise OSError(f"answered {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from exc
    except http.client.HTTPException as exc:
        raise OSError(f"no valid HTTP response ({type(exc).__name__}: {exc})") from exc
    return json.loads(body or b"null")


def _read_until(resp: Any, deadline: float, limit: int) -> bytes:
    """A response body read in pieces, so that a server dripping bytes cannot hold the reader past its deadline."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("timed out reading the body")
        chunk = resp.read1(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError(f"larger than {limit // 1_000_000} MB")


def http_post(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> int:
    """POST an empty body and return the 2xx status; OSError (with the reason) for anything else."""
    req = urllib.request.Request(url, method="POST", data=b"", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        raise OSError(f"answered {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from exc
    except http.client.HTTPException as exc:  # e.g. the connection closed without a response
        raise OSError(f"no valid HTTP response ({type(exc).__name__}: {exc})") from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def poll_ready(endpoints: list[Endpoint], still_waiting: Callable[[list[Endpoint]], list[Endpoint]],
               deadline: float, failure: Callable[[list[Endpoint]], Exception], *, first_delay: float = 0.02,
               max_delay: float = 0.25) -> None:
    """Probe the replicas until every one answers: ``still_waiting`` probes those left and returns those that did
    not answer; at the deadline, raise ``failure`` of those. Between rounds the pause grows by half, up to
    ``max_delay`` (a quick stack is seen at once, a slow one is not hammered)."""
    waiting, delay = list(endpoints), first_delay
    while waiting:
        waiting = still_waiting(waiting)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise failure(waiting)
        time.sleep(delay)
        delay = min(delay * 1.5, max_delay)
