"""The same store code on a real PostgreSQL server: migrations, resume, idempotent results, `farm run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from tests.conftest import ROOT, farm

pytestmark = pytest.mark.integration


def stats(name: str, n: int) -> EndpointStats:
    return EndpointStats("GET", name, n, 0, n / 5, 3.0, 2.0, 5.0, 6.0, 9.0, 12.0, {2: n // 2, 6: n - n // 2})


def test_store_round_trip_on_postgres(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.migrate()
    store.migrate()  # idempotent
    loaded = parse_sweep("name: pg\nstack: shop\nmatrix: {users: [1, 2]}\n", source="s", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    assert store.create_or_resume(loaded, plan).new
    cell = plan.cells[0]
    store.mark_running(cell.id, {"name": "pg-host"})
    for n in (10, 20):
        result = LoadResult((stats("/x", n),), stats("Aggregated", n), 5, 1)
        store.record_result(cell.id, result, StackMetrics(3, 7, []))
    rows = store.cells("pg")
    assert [r.status for r in rows] == ["done", "pending"]
    assert sorted(m.requests for m in rows[0].measurements) == [20, 20]
    assert not store.create_or_resume(loaded, plan).new


@pytest.mark.usefixtures("nginx_available")
def test_farm_run_stores_into_postgres(postgres_url: str, workdir: Path) -> None:
    sweep = workdir / "s.yaml"
    sweep.write_text("name: pgrun\nstack: shop\nmatrix: {users: [2]}\nload: {duration: 2s, warmup: 1s}\n")
    env = {"FARM_DATABASE_URL": postgres_url}
    result = farm("run", str(sweep), cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    assert "postgresql+psycopg://farm@127.0.0.1" in result.stdout
    cells = json.loads(farm("results", "pgrun", "-f", "json", cwd=workdir, env=env).stdout)
    assert cells[0]["status"] == "done" and cells[0]["requests"] > 0
    assert not (workdir / "farm.db").exists()
