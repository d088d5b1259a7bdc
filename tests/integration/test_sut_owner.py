"""One owner per project on a SUT host: a worker cut off from the store never touches its successor's stack.

Two workers share a SUT host. The first runs a group's stack there; then its store connection is cut (a proxy in
this process between it and PostgreSQL refuses every connection) until long after its lease expired. The second
worker takes the group over. Docker's own event stream on the SUT host says what happened to each container.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from farm.stacks.probe import free_port
from tests.integration.conftest import require
from tests.integration.lab import Host, Worker
from tests.integration.sut import SutHost, base_image_tarball, sut_host
from tests.integration.test_lab import Lab, controller

pytestmark = [pytest.mark.integration]
__all__ = ["base_image_tarball"]

SWEEP = """
name: owner
stack: shop
matrix:
  architecture: [monolith]
  cache: [none]
  users: [1, 2, 3, 4, 5, 6]
load: {spawn_rate: 10, duration: 2s, warmup: 1s}
sut: {hosts: [sutA]}
targets: [w1]
"""
GONE = {"kill", "die", "stop", "destroy"}


class StoreProxy:
    """A TCP proxy to PostgreSQL that can be cut: every connection through it closed, new ones refused at once."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.cut = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def sever(self) -> None:
        """Close every connection through the proxy, and refuse new ones until `mend`."""
        self.cut.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()
            self._open.clear()

    def mend(self) -> None:
        self.cut.clear()

    def close(self) -> None:
        self._closing.set()
        self.sever()
        self._thread.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            if self.cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(a, selectors.EVENT_READ, b)
            sel.register(b, selectors.EVENT_READ, a)
            try:
                while not self.cut.is_set():
                    for key, _ in sel.select(0.5):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
            except OSError:
                return
            finally:
                for sock in (a, b):
                    with contextlib.suppress(OSError):
                        sock.close()


@contextlib.contextmanager
def docker_events(sut: SutHost, log: Path) -> Iterator[Path]:
    """Every container event of the SUT host's daemon, one JSON object a line, written to ``log`` meanwhile."""
    with log.open("w") as handle:
        proc = subprocess.Popen(["docker", "events", "--filter", "type=container", "--format", "{{json .}}"],
                                env=sut.env(), stdout=handle, stderr=subprocess.DEVNULL)
    try:
        yield log
    finally:
        proc.terminate()
        proc.wait(10)


def events(log: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [{"at": int(r["timeNano"]) / 1e9, "action": r["Action"].split(":")[0], "id": r["id"],
             "project": r["Actor"]["Attributes"].get("com.docker.compose.project")} for r in rows]


def cells(lab: Lab) -> list[dict[str, Any]]:
    engine = sqlalchemy.create_engine(lab.postgres.url())
    try:
        with engine.connect() as conn:
            rows = conn.execute(sqlalchemy.text(
                "SELECT c.status, c.host, c.error_message, extract(epoch from c.finished_at) FROM cells c"))
            return [{"status": s, "host": h, "error": e, "finished": float(f) if f else None}
                    for s, h, e, f in rows]
    finally:
        engine.dispose()


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)
    return value


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require("redis-server", "apt-get install redis-server")
    yield from controller(tmp_path, [Host("w1", None, "127.0.0.1"), Host("w2", None, "127.0.0.1")], [])


@pytest.mark.timeout(600)
def test_a_worker_cut_off_from_the_store_never_touches_the_stack_of_the_worker_that_took_over(
        lab: Lab, base_image_tarball: Path) -> None:
    with sut_host(base_image_tarball) as sut, contextlib.ExitStack() as stack:
        hosts = sut.hosts_file(lab.root / "farm-hosts.yaml", workdir=str(sut.root / "work"))
        proxy = StoreProxy(lab.postgres.port)
        stack.callback(proxy.close)
        log = stack.enter_context(docker_events(sut, lab.root / "events.jsonl"))
        w1, w2 = (Worker(host, {**lab.env(), "FARM_HOSTS_FILE": str(hosts)}, lab.root) for host in lab.hosts)
        w1.env["FARM_DATABASE_URL"] = lab.postgres.url().replace(f":{lab.postgres.port}/", f":{proxy.port}/")
        lab.workers += [w1.start(), w2.start()]
        sweep = lab.root / "owner.yaml"
        sweep.write_text(SWEEP)
        assert lab.farm("submit", str(sweep)).returncode == 0

        # Given the first worker measuring the group on the SUT host
        wait_until(lambda: any(c["status"] == "done" and c["host"] == "w1" for c in cells(lab)), 300,
                   "w1's first cell")
        # When its store becomes unreachable, for longer than its lease
        cut_at = time.time()
        proxy.sever()
        # Then the second worker takes the group over and finishes it
        done = wait_until(lambda: (cs := cells(lab)) and all(c["status"] in ("done", "failed") for c in cs) and cs,
                          300, "the group to finish")
        assert [c["error"] for c in done if c["status"] != "done"] == []
        assert {c["host"] for c in done} == {"w1", "w2"}
        finished = max(c["finished"] for c in done)
        proxy.mend()

        # And the containers w2 started were never stopped before its last cell was stored
        seen = events(log)
        theirs = {e["id"] for e in seen if e["action"] == "create" and e["at"] > cut_at}
        assert theirs, "the second worker started no container"
        touched = [e for e in seen if e["id"] in theirs and e["action"] in GONE and e["at"] < finished]
        assert touched == [], touched
        # And nothing of the first worker's stack ran beside them: it was gone before theirs was created
        first_created = min(e["at"] for e in seen if e["id"] in theirs)
        running: set[str] = set()
        for e in (e for e in seen if e["at"] < first_created):
            if e["action"] == "start":
                running.add(e["id"])
            elif e["action"] in ("die", "destroy"):
                running.discard(e["id"])
        assert running == set(), [e for e in seen if e["id"] in running][:3]
        # And the two attempts' projects have names of their own
        projects = {e["project"] for e in seen if e["action"] == "create" and e["project"]}
        assert len(projects) == 2, projects
        # And the second worker's teardown leaves nothing of either on the host
        wait_until(lambda: not sut.docker("ps", "-aq", "--filter", "label=io.loadfarm.deployment").stdout.split(),
                   120, "w2's teardown")
