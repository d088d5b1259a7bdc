"""Lab mode for real: Redis with a password, PostgreSQL, and `farm worker`s in their own network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Lab:
    """A controller (Redis, PostgreSQL) on this box and workers on namespace hosts."""

    root: Path
    redis: Redis
    postgres: Postgres
    hosts: list[Host]
    workers: list[Worker]

    def env(self, address: str = "127.0.0.1") -> dict[str, str]:
        return {"FARM_BROKER_URL": self.redis.url(address), "FARM_DATABASE_URL": self.postgres.url(address),
                "FARM_LEASE_S": "6", "FARM_REAP_INTERVAL_S": "1"}

    def add_worker(self, host: Host) -> Worker:
        worker = Worker(host, self.env(host.address), self.root).start()
        self.workers.append(worker)
        return worker

    def farm(self, *args: str) -> subprocess.CompletedProcess[str]:
        return farm(*args, cwd=self.root, env=self.env())

    def cells(self, name: str) -> list[dict]:
        result = self.farm("results", name, "-f", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait(self, name: str, predicate, timeout: float) -> list[dict]:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while True:
            cells = self.cells(name)
            if predicate(cells):
                return cells
            if time.monotonic() > deadline:
                logs = "\n".join(w.log.read_text()[-3000:] for w in self.workers if w.log.exists())
                raise AssertionError(f"timed out; cells: {[c['status'] for c in cells]}\n{logs}")
            time.sleep(1.0)


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
        redis.stop()
        postgres.remove()


def submit(lab: Lab, name: str, duration: int = 3, users: str = "2, 4, 6", caches: str = "none, local") -> None:
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
    assert status.returncode == 0 and "lab1" in status.stdout and "12/12" in status.stdout
    # And no password reached a log, the status output or the stored results
    stored = lab.farm("results", "together", "-f", "json").stdout
    for text in (*(w.log.read_text() for w in lab.workers), status.stdout, stored):
        assert lab.redis.password not in text


def test_kill_9_of_a_worker_mid_group_loses_nothing_and_leaves_no_stack(lab: Lab) -> None:
    first, second = (lab.add_worker(h) for h in lab.hosts)
    submit(lab, "crash", duration=4)
    # Given lab1 in the middle of a group
    lab.wait("crash", lambda cells: any(c["status"] == "running" and c["host"] == "lab1" for c in cells), 120)
    time.sleep(2.0)
    assert first.stack_processes(), "lab1 should be running a stack"
    # When its worker dies at once (its stack is left behind)
    first.kill9()
    # Then the sweep still completes, with exactly one result per cell
    cells = lab.wait("crash", all_done, 300)
    one_result_per_cell(lab)
    assert len(cells) == 12
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


def test_cancel_mid_cell_stops_everything_within_15s_and_resume_finishes(local_lab: Lab) -> None:
    lab = local_lab
    worker = lab.add_worker(lab.hosts[0])
    submit(lab, "stopme", duration=12, users="2", caches="local")
    lab.wait("stopme", lambda cells: any(c["status"] == "running" for c in cells), 120)
    time.sleep(4.0)  # mid-cell: Locust is loading the stack
    assert any("locust" in " ".join(p.cmdline()) for p in worker.stack_processes()) or worker.stack_processes()
    # When the user cancels
    started = time.monotonic()
    result = lab.farm("cancel", "stopme")
    assert result.returncode == 0, result.stderr
    # Then within 15 s: no Locust, no stack process, and cells are marked cancelled
    deadline = started + 15
    while time.monotonic() < deadline and (worker.stack_processes() or _locusts(lab)):
        time.sleep(0.3)
    assert worker.stack_processes() == [] and _locusts(lab) == []
    cells = lab.cells("stopme")
    assert {c["status"] for c in cells} <= {"done", "cancelled"} and any(c["status"] == "cancelled" for c in cells)
    assert time.monotonic() - started < 15
    # When it is resumed, it finishes
    assert lab.farm("resume", "stopme").returncode == 0
    lab.wait("stopme", all_done, 400)
    one_result_per_cell(lab)


def _locusts(lab: Lab) -> list[str]:
    import psutil

    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
            if "locust" in " ".join(p.info["cmdline"] or []) and str(lab.root) in " ".join(p.info["cmdline"] or [])]


def test_redis_restart_and_a_postgres_outage_mid_sweep_lose_nothing(local_lab: Lab) -> None:
    lab = local_lab
    lab.add_worker(lab.hosts[0])
    submit(lab, "outages", duration=3)
    # Given the sweep under way
    lab.wait("outages", lambda cells: sum(c["status"] == "done" for c in cells) >= 2, 120)
    # When Redis restarts (its queue persisted to its append-only file)
    lab.redis.stop()
    time.sleep(2.0)
    lab.redis.start()
    lab.wait("outages", lambda cells: sum(c["status"] == "done" for c in cells) >= 5, 180)
    # And PostgreSQL is away for about 20 s
    lab.postgres.stop()
    time.sleep(20.0)
    lab.postgres.start()
    # Then the sweep completes with every cell stored exactly once
    cells = lab.wait("outages", all_done, 300)
    assert len(cells) == 12
    one_result_per_cell(lab)
