"""A lab on one box for integration tests: network namespaces as hosts, a password-protected Redis, workers.

Traffic stays on loopback and on the veth addresses these helpers create (10.213.N.0/30 pairs, N free on this
box at the time, so that several labs can run at once).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from farm.stacks.probe import free_port, tcp_open

SUBNET = "10.213"  # box .1, lab host .2 of 10.213.N.0/30 (sut.py's SUT hosts use 10.214.N.x)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def free_subnets(count: int, prefix: str = SUBNET) -> list[int]:
    """``count`` random indexes N whose 10.x.N.0/30 no interface of this box or of any namespace uses."""
    text = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines():
        if line.strip():
            text += subprocess.run(["ip", "netns", "exec", line.split()[0], "ip", "-o", "addr"],
                                   capture_output=True, text=True).stdout
    used = set(re.findall(rf"inet {re.escape(prefix)}\.(\d+)\.", text))
    free = [n for n in range(1, 255) if str(n) not in used]
    assert len(free) >= count, f"no {count} free {prefix}.N.0/30 subnets"
    return secrets.SystemRandom().sample(free, count)


@dataclass
class Host:
    """A 'lab machine': a network namespace joined to this box by a veth pair."""

    name: str
    netns: str | None
    address: str  # the box's address as the host sees it (broker, database)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


@contextlib.contextmanager
def namespaces(count: int, *, names: list[str] | None = None, prefix: str = SUBNET) -> Iterator[list[Host]]:
    """``count`` network namespaces, each with lo up and a veth pair to the box on a free ``prefix``.N.0/30;
    hosts are named ``names`` (default lab1, lab2, …)."""
    tag = secrets.token_hex(2)
    made: list[str] = []
    hosts: list[Host] = []
    names = names or [f"lab{i}" for i in range(1, count + 1)]
    try:
        for i, n in enumerate(free_subnets(count, prefix), start=1):
            ns, outer, inner = f"lf{tag}-{i}", f"lf{tag}o{i}", f"lf{tag}i{i}"
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", inner, "netns", ns)
            box, guest = f"{prefix}.{n}.1", f"{prefix}.{n}.2"
            sh("ip", "addr", "add", f"{box}/30", "dev", outer)
            sh("ip", "link", "set", outer, "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{guest}/30", "dev", inner)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            hosts.append(Host(names[i - 1], ns, box))
        yield hosts
    finally:
        for ns in made:
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@dataclass
class Redis:
    """A redis-server with a password, bound to loopback and the given addresses, persisting to its folder."""

    folder: Path
    binds: list[str]
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "redis.conf"
        conf.write_text(f"port {self.port}\nbind {' '.join(['127.0.0.1', *self.binds])}\n"
                        f"requirepass {self.password}\ndir {self.folder}\nappendonly yes\nappendfsync always\n"
                        "save \"\"\nprotected-mode yes\n")
        conf.chmod(0o600)
        self.proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while not tcp_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def url(self, address: str = "127.0.0.1") -> str:
        return f"redis://:{self.password}@{address}:{self.port}/0"


class Worker:
    """`farm worker --name NAME` on a host, with its own artefacts folder; killable like a crashed machine."""

    def __init__(self, host: Host, env: dict[str, str], root: Path) -> None:
        self.host = host
        self.artefacts = root / host.name
        self.artefacts.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env, "FARM_ARTEFACTS_DIR": str(self.artefacts)}
        self.log = root / f"{host.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                self.host.command([sys.executable, "-m", "farm", "worker", "--name", self.host.name]),
                env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill9(self) -> None:
        """Kill the worker and its pool process at once, as a power cut would (its stack is left behind)."""
        assert self.proc is not None
        procs = [p for p in psutil.Process(self.proc.pid).children(recursive=True)
                 if "farm" in " ".join(p.cmdline()) and "worker" in " ".join(p.cmdline())]
        for proc in [psutil.Process(self.proc.pid), *procs]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stack_processes(self) -> list[psutil.Process]:
        """Processes whose working folder is one of this worker's deployments."""
        root = str(self.artefacts / "deployments")
        found = []
        for proc in psutil.process_iter(["cwd", "status"]):
            with contextlib.suppress(psutil.Error):
                if (proc.info["cwd"] or "").startswith(root) and proc.info["status"] != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        return found
