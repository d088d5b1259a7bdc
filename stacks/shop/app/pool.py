"""One shop instance as N worker processes that share its port, its counters and its resets.

Why: per instance, microservices run four processes (gateway, catalog, pricing, cart); a monolith instance gets
the same CPU budget only if it may run as many processes (README, "Resources: what is equal and what is not").

- **Port.** The parent binds one listening socket per worker to the instance's port with ``SO_REUSEPORT`` (the
  kernel spreads new connections over them evenly) *before* forking, so no connection is ever refused while a
  worker starts: it waits in its socket's backlog.
- **Supervision.** The parent serves nothing. SIGTERM/SIGINT are passed on to every worker; a worker that dies
  on its own stops the whole instance (exit 1), so the farm sees a failed process, never a silently smaller one.
  A worker dies with its parent (``PR_SET_PDEATHSIG``) even if the parent is killed outright.
- **Counters.** An anonymous shared memory map holds one slot per worker (requests, cache hits/misses/entries),
  written only by its own worker and summed by whichever worker answers ``/metrics``.
- **Reset.** ``/admin/reset`` reaches one worker; it bumps a generation number in the shared map. A slot written
  under an older generation counts as zero, and every worker empties its own cache and counters before its next
  request once it sees the new generation.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

FIELDS = ("generation", "pid", "ready", "requests", "hits", "misses", "entries")
_SLOT = len(FIELDS)
_INDEX = {name: i for i, name in enumerate(FIELDS)}
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Counters:
    """The instance's counters: one slot per worker in memory shared by every worker of the instance."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.worker = 0
        # Cell 0 is the instance's reset generation; then one slot of FIELDS per worker. An anonymous map is
        # MAP_SHARED, so the workers forked after it see each other's writes.
        self._map = mmap.mmap(-1, 8 * (1 + workers * _SLOT))
        self._cells = memoryview(self._map).cast("q")

    def _at(self, worker: int, name: str) -> int:
        return 1 + worker * _SLOT + _INDEX[name]

    def bind(self, worker: int) -> None:
        """Make this process the owner of slot ``worker``."""
        self.worker = worker
        self._cells[self._at(worker, "pid")] = os.getpid()
        self._cells[self._at(worker, "generation")] = self._cells[0]

    def add(self, name: str, n: int = 1) -> None:
        """Add to one of this worker's counters."""
        self._cells[self._at(self.worker, name)] += n

    def set(self, name: str, value: int) -> None:
        """Set one of this worker's counters."""
        self._cells[self._at(self.worker, name)] = value

    def mark_ready(self) -> None:
        """This worker serves requests."""
        self.set("ready", 1)

    def all_ready(self) -> bool:
        """Whether every worker of the instance serves requests."""
        return all(self._cells[self._at(w, "ready")] for w in range(self.workers))

    def request_reset(self) -> None:
        """Ask every worker to start afresh (each one obeys before its next request)."""
        self._cells[0] += 1

    def obey_reset(self) -> bool:
        """Zero this worker's counters if a reset was asked since it last looked; True if it was."""
        generation = self._cells[0]
        if self._cells[self._at(self.worker, "generation")] == generation:
            return False
        for name in ("requests", "hits", "misses", "entries"):
            self.set(name, 0)
        self.set("generation", generation)
        return True

    def slot(self, worker: int) -> dict[str, int]:
        """One worker's counters; zero where the worker has not yet obeyed the latest reset."""
        current = self._cells[self._at(worker, "generation")] == self._cells[0]
        return {name: (self._cells[self._at(worker, name)] if current or name in ("pid", "ready") else 0)
                for name in FIELDS if name != "generation"}

    def total(self, name: str) -> int:
        """A counter summed over the instance's workers."""
        return sum(self.slot(w)[name] for w in range(self.workers))

    def cpu_seconds(self) -> float | None:
        """CPU time used by the instance's workers so far (None where the kernel does not tell)."""
        if self.workers == 1:
            return time.process_time()
        total = 0.0
        for w in range(self.workers):
            cpu = _cpu_of(self.slot(w)["pid"])
            if cpu is None:
                return None
            total += cpu
        return total


def _cpu_of(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime, fields 14 and 15 of stat(5)


def listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket on host:port (one of several sharing it when ``reuse_port``)."""
    sock = socket.create_server((host, port), backlog=128, reuse_port=reuse_port)
    sock.set_inheritable(True)
    return sock


def serve(workers: int, host: str, port: int, run: Callable[[socket.socket, Counters], None]) -> int:
    """Run ``run(sock, counters)`` in ``workers`` processes sharing host:port; the exit code of the instance.

    With one worker it runs in this very process, as a plain single-process server.
    """
    counters = Counters(workers)
    if workers == 1:
        counters.bind(0)
        run(listen(host, port, reuse_port=False), counters)
        return 0
    socks = [listen(host, port, reuse_port=True) for _ in range(workers)]
    children: dict[int, int] = {}
    parent = os.getpid()
    for worker, sock in enumerate(socks):
        pid = os.fork()
        if pid == 0:
            _worker(worker, sock, socks, counters, run, parent)
        children[pid] = worker
    for sock in socks:
        sock.close()
    return _supervise(children)


def _worker(worker: int, sock: socket.socket, socks: list[socket.socket], counters: Counters,
            run: Callable[[socket.socket, Counters], None], parent: int) -> None:
    code = 0
    try:
        _die_with_parent(parent)
        for other in socks:
            if other is not sock:
                other.close()
        counters.bind(worker)
        run(sock, counters)
    except BaseException:  # a worker never returns into the parent's code: report and exit
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _supervise(children: dict[int, int]) -> int:
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        worker = children.pop(pid, None)
        if worker is not None and not stopping:
            print(f"worker {worker} (pid {pid}) exited with status {os.waitstatus_to_exitcode(status)}: "
                  "stopping the instance", file=sys.stderr, flush=True)
            code = 1
            stop(signal.SIGTERM, None)
    return code
