"""Lab mode for real: Redis with a password, PostgreSQL, and `farm worker`s in their own network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import farm
from tests.integration.conftest import Postgres, require
from tests.integration.lab import Host, Redis, Worker, namespaces

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]

LAB_SWEEP = """
name: {name}
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [{caches}]
  users: [{users}]
load: {{spawn_rate: 10, duration: {duration}s, warmup: 1s}}
"""
LEASE_S = 6  # a running group's lease in these labs: a dead worker's group goes back to the queue this soon


@dataclass
class Lab:
    """A controller (Redis, PostgreSQL) on this box and workers on namespace hosts."""

    root: Path
    redis: Redis
    postgres: Postgres
    hosts: list[Host]
    workers: list[Worker]
    _engine: Any = None
    last_results: str = ""

    def env(self, address: str = "127.0.0.1") -> dict[str, str]:
        return {"FARM_BROKER_URL": self.redis.url(address), "FARM_DATABASE_URL": self.postgres.url(address),
                "FARM_LEASE_S": str(LEASE_S), "FARM_REAP_INTERVAL_S": "1"}

    def add_worker(self, host: Host) -> Worker:
        worker = Worker(host, self.env(host.address), self.root).start()
        self.workers.append(worker)
        return worker

    def farm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return farm(*args, cwd=self.root, env=self.env())

    def cells(self, name: str) -> list[dict]:
        """The cells as `farm results NAME -f json` prints them (its output kept in ``last_results``)."""
        result = self.farm("results", name, "-f", "json")
        assert result.returncode == 0, result.stderr
        self.last_results = result.stdout
        return json.loads(result.stdout)

    def states(self, name: str) -> list[dict]:
        """Each cell's id, status and host, read straight from the store: cheap enough to poll (no CLI process)."""
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.postgres.url(), pool_pre_ping=True)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(sqlalchemy.text(
                    "SELECT c.id, c.status, c.host FROM cells c JOIN sweeps s ON s.id = c.sweep_id "
                    "WHERE s.name = :name"), {"name": name}).all()
        except sqlalchemy.exc.OperationalError:  # PostgreSQL away (the outage test): nothing is known
            self._engine.dispose()
            return []
        return [{"id": id_, "status": status, "host": host} for id_, status, host in rows]

    def wait_for(self, name: str, predicate: Callable[[list[dict]], bool], timeout: float) -> None:
        """Poll the store (every 0.25 s) until ``predicate(cells)`` holds; cells have id, status and host."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states(name)
            if states and predicate(states):
                return
            if time.monotonic() > deadline:
                logs = "\n".join(w.log.read_text()[-3000:] for w in self.workers if w.log.exists())
                raise AssertionError(f"timed out; cells: {[c['status'] for c in states]}\n{logs}")
            time.sleep(0.25)

    def wait(self, name: str, predicate: Callable[[list[dict]], bool], timeout: float) -> list[dict]:
        """`wait_for`, then the cells as `farm results -f json` gives them (the predicate holds for those too)."""
        self.wait_for(name, predicate, timeout)
        cells = self.cells(name)
        assert predicate(cells), [c["status"] for c in cells]
        return cells

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    require("ip", "apt-get install iproute2")
    require("redis-server", "apt-get install redis-server")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with namespaces(2) as hosts:
        yield from controller(tmp_path, hosts, [h.address for h in hosts])


def controller(root: Path, hosts: list[Host], listen: list[str]) -> Iterator[Lab]:
    """Redis and PostgreSQL for a lab of ``hosts``, stopped with every worker afterwards."""
    redis = Redis(root / "redis", listen).start()
    postgres = Postgres(listen=listen).start()
    postgres.create_database()
    lab = Lab(root, redis, postgres, hosts, [])
    try:
        yield lab
    finally:
        for worker in lab.workers:
            worker.stop()
        lab.close()
        redis.stop()
        postgres.remove()


def submit(lab: Lab, name: str, duration: int = 2, users: str = "2, 4", caches: str = "none, local") -> None:
    """Submit a sweep of the shop: 2 architectures × ``caches`` (4 groups by default) × ``users`` (2 cells each)."""
    sweep = lab.root / f"{name}.yaml"
    sweep.write_text(LAB_SWEEP.format(name=name, duration=duration, users=users, caches=caches))
    result = lab.farm("submit", str(sweep))
    assert result.returncode == 0, result.stderr
    assert f"submitted {name}" in result.stdout


def all_done(cells: list[dict]) -> bool:
    return all(c["status"] == "done" for c in cells)


def one_result_per_cell(lab: Lab) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(lab.postgres.url())
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT c.id, COUNT(m.id) FROM cells c LEFT JOIN measurements m "
            "ON m.cell_id = c.id AND m.name = 'Aggregated' GROUP BY c.id")).all()
    engine.dispose()
    assert rows and all(n == 1 for _id, n in rows)


def test_two_namespace_workers_complete_a_sweep_together(lab: Lab) -> None:
    # Given two lab machines, each with its own worker
    for host in lab.hosts:
        lab.add_worker(host)
    # When a sweep is submitted from the controller
    submit(lab, "together")
    cells = lab.wait("together", all_done, 240)
    # Then every cell is done once, each records the host that ran it, and both hosts took part
    assert {c["host"] for c in cells} == {"lab1", "lab2"}
    one_result_per_cell(lab)
    # And cells compared point by point (same parameters but architecture) ran on the same host
    pairs: dict[tuple, set[str]] = {}
    for c in cells:
        key = tuple(sorted((k, v) for k, v in c["params"].items() if k != "architecture"))
        pairs.setdefault(key, set()).add(c["host"])
    assert all(len(hosts) == 1 for hosts in pairs.values())
    # And `farm status` shows the finished sweep by host
    status = lab.farm("status", "together")
    assert status.returncode == 0 and "lab1" in status.stdout and "8/8" in status.stdout
    # And no password reached a log, the status output or the stored results
    stored = lab.last_results  # what `farm results together -f json` printed, above
    for text in (*(w.log.read_text() for w in lab.workers), status.stdout, stored):
        assert lab.redis.password not in text


def test_kill_9_of_a_worker_mid_group_loses_nothing_and_leaves_no_stack(lab: Lab) -> None:
    first, second = (lab.add_worker(h) for h in lab.hosts)
    submit(lab, "crash")
    # Given lab1 in the middle of a group: its stack up and Locust loading it
    lab.wait_for("crash", lambda cells: any(c["status"] == "running" and c["host"] == "lab1" for c in cells), 120)
    under_load(lab, str(first.artefacts))
    assert first.stack_processes(), "lab1 should be running a stack"
    # When its worker dies at once (its stack is left behind)
    first.kill9()
    # Then the sweep still completes, with exactly one result per cell
    cells = lab.wait("crash", all_done, 300)
    one_result_per_cell(lab)
    assert len(cells) == 8
    # And once a worker runs on lab1 again, nothing of the dead worker's stack survives
    restarted = Worker(lab.hosts[0], lab.env(lab.hosts[0].address), lab.root).start()
    lab.workers.append(restarted)
    deadline = time.monotonic() + 30
    while first.stack_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert first.stack_processes() == []
    assert second.proc is not None and second.proc.poll() is None


@pytest.fixture
def local_lab(tmp_path: Path) -> Iterator[Lab]:
    """The same controller with workers on this box's loopback (for failures of the servers themselves)."""
    require("redis-server", "apt-get install redis-server")
    yield from controller(tmp_path, [Host("box1", None, "127.0.0.1")], [])


def test_cancel_mid_cell_stops_the_running_cell_and_everything_and_resume_finishes(local_lab: Lab) -> None:
    lab = local_lab
    worker = lab.add_worker(lab.hosts[0])
    submit(lab, "stopme", duration=15, users="2", caches="local")
    lab.wait_for("stopme", lambda cells: any(c["status"] == "running" for c in cells), 120)
    under_load(lab, str(lab.root))  # mid-cell: Locust loads the stack for 1 + 15 s (the cancel's CLI starts in less)
    [running] = [c["id"] for c in lab.states("stopme") if c["status"] == "running"]
    assert any("locust" in " ".join(p.cmdline()) for p in worker.stack_processes()) or worker.stack_processes()
    # When the user cancels
    result = lab.farm("cancel", "stopme")
    assert result.returncode == 0, result.stderr
    # Then no Locust and no stack process is left (polled: how soon is the machine's business, not this test's)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (worker.stack_processes() or _locusts(lab)):
        time.sleep(0.3)
    assert worker.stack_processes() == [] and _locusts(lab) == []
    # And the cell that was loading was stopped mid-run, not measured to its end: cancelled while under load
    cells = {c["id"]: c for c in lab.cells("stopme")}
    assert cells[running]["status"] == "cancelled", cells[running]
    assert cells[running]["error"]["stage"] == "load", cells[running]
    assert {c["status"] for c in cells.values()} <= {"done", "cancelled"}, cells
    # When it is resumed, it finishes
    assert lab.farm("resume", "stopme").returncode == 0
    lab.wait("stopme", all_done, 400)
    one_result_per_cell(lab)


def _locusts(lab: Lab, under: str | None = None) -> list[str]:
    """Command lines of Locust processes whose arguments name ``under`` (default: anything of this lab)."""
    import psutil

    marker = under or str(lab.root)
    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
            if "locust" in " ".join(p.info["cmdline"] or []) and marker in " ".join(p.info["cmdline"] or [])]


def under_load(lab: Lab, under: str, settle_s: float = 1.0) -> None:
    """Wait until a Locust of ``under`` (a worker's artefacts folder, or the lab's) runs, then ``settle_s`` more."""
    deadline = time.monotonic() + 60
    while not _locusts(lab, under):
        assert time.monotonic() < deadline, "Locust never started"
        time.sleep(0.1)
    time.sleep(settle_s)


def test_redis_restart_and_a_postgres_outage_mid_sweep_lose_nothing(local_lab: Lab) -> None:
    lab = local_lab
    lab.add_worker(lab.hosts[0])
    submit(lab, "outages")
    # Given the sweep under way
    lab.wait_for("outages", lambda cells: sum(c["status"] == "done" for c in cells) >= 2, 120)
    # When Redis restarts (its queue persisted to its append-only file)
    lab.redis.stop()
    time.sleep(2.0)
    lab.redis.start()
    lab.wait_for("outages", lambda cells: sum(c["status"] == "done" for c in cells) >= 4, 180)
    # And PostgreSQL is away for twice a group's lease (every lease runs out meanwhile)
    lab.postgres.stop()
    time.sleep(2 * LEASE_S)
    lab.postgres.start()
    # Then the sweep completes with every cell stored exactly once
    cells = lab.wait("outages", all_done, 300)
    assert len(cells) == 8
    one_result_per_cell(lab)
