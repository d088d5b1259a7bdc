"""Issue 15 items 1–2 end to end: a shop sweep that scales catalog alone runs that many catalog processes behind
the gateway, load reaches every replica, and each cell stores its declared cost, CPU per request and breakdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm.store.repository import Store
from tests.conftest import farm, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]

SWEEP = """
name: scaled
stack: shop
matrix:
  architecture: [monolith, microservices]
  replicas.catalog: [1, 2]
  users: [6]
load: {spawn_rate: 20, duration: 2s, warmup: 1s}
price: {per_unit_hour: 0.04, currency: USD}
"""


def test_scaling_catalog_alone_runs_its_replicas_spreads_the_load_and_stores_each_cell_s_cost(workdir: Path) -> None:
    # Given a sweep of both architectures that scales the shop's catalog over 1 and 2 replicas
    (workdir / "sweep.yaml").write_text(SWEEP)
    # When it runs (as processes on this host)
    run = farm("run", "sweep.yaml", cwd=workdir)
    assert run.returncode == 0, run.stderr + run.stdout
    # Then it says the monolith ignores the key, and runs 3 configurations, not 4
    assert "note: matrix.replicas.catalog: ignored for architecture=monolith (it runs no catalog)" in run.stdout
    assert "3 cells in 3 stack configurations" in run.stdout, run.stdout
    cells = {(c["params"]["architecture"], c["params"].get("replicas.catalog")): c
             for c in json.loads(farm("results", "scaled", "--format", "json", cwd=workdir).stdout)}
    assert set(cells) == {("monolith", None), ("microservices", 1), ("microservices", 2)}
    # And every cell has its declared cost in cores (Σ replicas × cost) and its measured CPU per request
    assert [cells[k]["cost"] for k in sorted(cells, key=str)] == [4.0, 5.0, 4.0]  # micro 1, micro 2, monolith
    for cell in cells.values():
        assert cell["status"] == "done" and cell["failures"] == 0, cell
        assert cell["cpu_ms_per_request"] > 0, cell
        assert cell["cost_breakdown"] is not None, cell
    # And the breakdown gives each service its replicas, cost and CPU: catalog × 2 costs 2 and works
    two = cells[("microservices", 2)]["cost_breakdown"]
    assert two["catalog"]["replicas"] == 2 and two["catalog"]["cost"] == 2.0 and two["gateway"]["replicas"] == 1
    assert two["catalog"]["cpu_ms_per_request"] > 0 and 0 < two["catalog"]["cpu_share"] < 1
    assert sum(s["cpu_share"] for s in two.values()) == pytest.approx(1.0, abs=0.01)
    assert two["balancer"]["scalable"] is False
    app = cells[("monolith", None)]["cost_breakdown"]["app"]  # 4 worker processes: 4 cores
    assert (app["replicas"], app["cost_per_replica"], app["cost"]) == (1, 4.0, 4.0) and app["cpu_share"] > 0.5
    # And the two catalog processes really ran and both served the gateway's reads (their own request counts)
    rows = {row.id: row for row in Store(f"sqlite:///{workdir / 'farm.db'}").cells("scaled")}
    instances = rows[cells[("microservices", 2)]["id"]].stack_metrics["instances"]
    catalog = sorted((i["replica"], i["requests"]) for i in instances if i["service"] == "catalog")
    assert [replica for replica, _ in catalog] == [0, 1]
    assert all(requests > 10 for _, requests in catalog), catalog
    assert {i["service"] for i in instances} == {"catalog", "pricing", "cart", "gateway"}
    # And the results table carries the replicas column (– where the configuration runs no catalog)
    table = farm("results", "scaled", cwd=workdir)
    assert "replicas.catalog" in table.stdout and "–" in table.stdout, table.stdout
    header = farm("results", "scaled", "--format", "csv", cwd=workdir).stdout.splitlines()[0].split(",")
    assert {"replicas.catalog", "cost", "cpu_ms_per_request"} <= set(header), header
    assert stray_processes(str(workdir)) == []
