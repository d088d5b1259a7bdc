"""Issue 9 item 9: Locust's request count for a cell is compared with the stack's own count over the same window.

Real `farm run`s of the real shop (behind nginx) and sleepy stacks; the counts are read back from
`farm results --format json` and from the stored per-service counts.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import farm, stray_processes

pytestmark = [pytest.mark.integration]

SHOP = """
name: agree
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [local]
  instances: [2]
  users: [6]
load: {spawn_rate: 20, duration: 3s, warmup: 1s}
"""

# Every fourth request goes to the balancer's own /healthz: nginx answers it, no instance ever sees it.
BALANCER_ANSWERS = '''
from locust import FastHttpUser, constant, task


class Shopper(FastHttpUser):
    wait_time = constant(0.02)

    @task(3)
    def product(self):
        self.client.get("/products/7", name="product")

    @task(1)
    def balancer(self):
        self.client.get("/healthz", name="balancer")
'''


def stored_counts(workdir: Path) -> dict[str, dict[str, object]]:
    """Each done cell's stored request comparison, by architecture (or stack)."""
    with sqlite3.connect(workdir / "farm.db") as conn:
        rows = conn.execute("SELECT params, stack_metrics FROM cells WHERE status = 'done'").fetchall()
    return {json.loads(p).get("architecture", "-"): json.loads(m)["requests"] for p, m in rows}


@pytest.mark.usefixtures("nginx_available")
def test_the_shop_counts_what_locust_sent_at_the_services_facing_the_balancer(workdir: Path) -> None:
    # Given the shop, both architectures, two instances each
    (workdir / "sweep.yaml").write_text(SHOP)
    # When it runs
    result = farm("run", "sweep.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr + result.stdout
    cells = {c["params"]["architecture"]: c for c in
             json.loads(farm("results", "agree", "--format", "json", cwd=workdir).stdout)}
    # Then each cell's server count is the front services' (monolith: app; microservices: the gateways) ...
    assert cells["monolith"]["server_requests_services"] == "app"
    assert cells["microservices"]["server_requests_services"] == "gateway"
    # ... and it agrees with Locust's within 1% plus the requests in flight at the window's two edges (a few, not
    # a tenth of the window's): no mismatch
    stored = stored_counts(workdir)
    for arch, cell in cells.items():
        assert cell["status"] == "done" and cell["requests"] > 50, cell
        allowance = stored[arch]["allowance"]
        assert isinstance(allowance, int) and allowance < 0.1 * cell["requests"], stored[arch]
        assert abs(cell["server_requests"] - cell["requests"]) <= allowance, (cell, stored[arch])
        assert cell["request_mismatch"] is False, cell
    # And behind the gateway, a request is counted again by every service it touches, which is why only the
    # front is compared: catalog and pricing together saw more requests than the client sent
    by_service = stored["microservices"]["by_service"]
    assert isinstance(by_service, dict) and set(by_service) == {"gateway", "catalog", "pricing", "cart"}
    assert by_service["catalog"] + by_service["pricing"] > by_service["gateway"], by_service
    assert stray_processes(str(workdir)) == []


@pytest.mark.usefixtures("nginx_available")
def test_requests_that_never_reach_an_instance_are_flagged_as_a_mismatch(workdir: Path) -> None:
    # Given a scenario a quarter of whose requests the balancer answers itself
    (workdir / "balancer.py").write_text(BALANCER_ANSWERS)
    (workdir / "sweep.yaml").write_text(SHOP.replace("architecture: [monolith, microservices]",
                                                     "architecture: [monolith]").replace(
        "load: {", "load: {locustfile: balancer.py, "))
    # When it runs
    result = farm("run", "sweep.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr + result.stdout
    [cell] = json.loads(farm("results", "agree", "--format", "json", cwd=workdir).stdout)
    # Then the server saw about three quarters of what Locust counted, and the cell is flagged
    assert cell["failures"] == 0 and cell["requests"] > 100
    assert cell["server_requests"] / cell["requests"] == pytest.approx(0.75, abs=0.05), cell
    assert cell["request_mismatch"] is True
    stored = stored_counts(workdir)["monolith"]
    assert stored["difference"] == pytest.approx(-0.25, abs=0.05) and stored["client"] == cell["requests"]


def test_a_stack_whose_entry_is_an_instance_is_compared_at_its_entry(workdir: Path) -> None:
    # Given the sleepy stack (no balancer: its one app replica is the entry)
    (workdir / "sweep.yaml").write_text("name: agree\nstack: sleepy\nmatrix: {users: [4], delay_ms: [5]}\n"
                                        "load: {spawn_rate: 10, duration: 3s, warmup: 1s}\n")
    # When it runs
    result = farm("run", "sweep.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr + result.stdout
    [cell] = json.loads(farm("results", "agree", "--format", "json", cwd=workdir).stdout)
    # Then the app's own count is compared, and it agrees with Locust's
    assert cell["server_requests_services"] == "app" and cell["requests"] > 50
    assert cell["server_requests"] == pytest.approx(cell["requests"], rel=0.01), cell
    assert cell["request_mismatch"] is False
