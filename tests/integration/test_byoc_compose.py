"""A team's own docker-compose.yml, unchanged, through the farm on a SUT host (#17): the classic exercise's shape
(examples/stacks/classic-compose: nginx on 8080:80 with a hand-written nginx.conf, an app scaled with --scale that
publishes nothing, Redis), reset and hit ratio from Redis itself."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ROOT, farm
from tests.integration.sut import SutHost, base_image_tarball
from tests.integration.test_compose_sut import hosts_file, leftovers, sut

# a real sweep (two cells) on a SUT host started for this module: minutes on a busy 2-core machine. Its windows
# are 6 s: a metrics reading at a window's edge is a few SSH round trips (the probe, Redis' INFO, the cgroup
# sample), seconds each under the team's load (load average 35 seen); a 3 s window once gave no hit ratio there,
# most likely no hit or miss between the two readings of Redis
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
__all__ = ["base_image_tarball", "sut"]  # fixtures: the module-scoped SUT host, as test_compose_sut has it

EXAMPLE = ROOT / "examples" / "stacks" / "classic-compose"
SWEEP = f"""
name: byoc
stack: {EXAMPLE}
matrix:
  instances: [2]
  users: [3, 6]
load: {{spawn_rate: 20, duration: 6s, warmup: 1s}}
sut: {{hosts: [sutA]}}
"""


def instance_metrics(db: Path, name: str, users: int) -> list[dict[str, object]]:
    """The per-replica metrics documents stored with the sweep's cell at ``users``."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        [(text,)] = conn.execute("SELECT c.stack_metrics FROM cells c JOIN sweeps s ON s.id = c.sweep_id "
                                 "WHERE s.name = ? AND c.users = ?", (name, users)).fetchall()
    return list(json.loads(text)["instances"])


def test_the_teams_compose_file_runs_unchanged_and_nginx_balances_over_every_replica(workdir: Path,
                                                                                   sut: SutHost) -> None:
    # Given the team's compose file, unchanged, as a compose-only stack, and a sweep scaling its app to 2
    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    sweep = workdir / "byoc.yaml"
    sweep.write_text(SWEEP)
    # When the sweep runs on the SUT host
    result = farm("run", str(sweep), cwd=workdir, env={"FARM_HOSTS_FILE": str(hosts)}, timeout=900)
    # Then both cells are done without a failed request, each after Redis was emptied in its container (a reset
    # that failed would fail its cell at stage reset)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cells = json.loads(farm("results", "byoc", "-f", "json", cwd=workdir).stdout)
    assert len(cells) == 2
    for cell in cells:
        assert cell["status"] == "done" and cell["requests"] > 0 and cell["failures"] == 0, cell
        # And the hit ratio was read from Redis' own INFO stats: the app has no cache metrics of its own
        assert cell["cache_hit_ratio"] is not None and 0 < cell["cache_hit_ratio"] <= 1, (
            cell["cache_hit_ratio"], cell.get("warnings"), cell["requests"])
        assert not [w for w in cell.get("warnings") or [] if "cache statistics" in w], cell["warnings"]
    # And both app replicas, which publish nothing in the team's file (nor in the farm's override), were read one
    # by one from the farm's probe in the project's network, and each served load: nginx's `server app:80;`
    # resolved to both (the entry started after them)
    replicas = {(m["service"], m["replica"]): m["requests"] for m in instance_metrics(workdir / "farm.db", "byoc", 6)}
    assert set(replicas) == {("app", 0), ("app", 1)}, replicas
    assert all(isinstance(n, int) and n > 0 for n in replicas.values()), replicas
    # And nothing is left on the SUT host
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}


def test_stack_up_keeps_the_entrys_fixed_port_on_the_lab_address_and_publishes_nothing_else(workdir: Path,
                                                                                            sut: SutHost) -> None:
    import urllib.request

    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    env = {"FARM_HOSTS_FILE": str(hosts)}
    # When the team's stack is brought up by hand with 2 app replicas
    up = farm("stack", "up", str(EXAMPLE), "--sut", "sutA", "--instances", "2", "--name", "byoc-hand", cwd=workdir,
              env=env, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # Then the entry answers on its own fixed port 8080, from here
        assert f"is up at http://{sut.address}:8080" in up.stdout, up.stdout
        with urllib.request.urlopen(f"http://{sut.address}:8080/item/3", timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["item"] == "3"
        # And the only published port is the entry's 8080, on the lab address only: the app replicas, the team's
        # Redis and the farm's probe publish nothing
        lines = sut.docker("ps", "--format", "{{.Names}} {{.Ports}}", "--filter",
                           "label=com.docker.compose.project=byoc-hand").stdout.splitlines()
        ports = {line.split()[0]: [p for p in line.split(" ", 1)[1].split(", ") if "->" in p]
                 for line in lines if " " in line}
        assert ports["byoc-hand-web-1"] == [f"{sut.address}:8080->80/tcp"], ports
        assert {name: published for name, published in ports.items() if published} == {
            "byoc-hand-web-1": [f"{sut.address}:8080->80/tcp"]}, ports
        assert {"byoc-hand-app-1", "byoc-hand-app-2", "byoc-hand-redis-1", "byoc-hand-farm-probe-1"} <= set(ports)
        # And each app replica answers the probe by its name in the project's network (what readiness used)
        for name in ("byoc-hand-app-1", "byoc-hand-app-2"):
            answer = sut.docker("exec", "byoc-hand-farm-probe-1", "curl", "-fsS", f"http://{name}:80/healthz")
            assert answer.returncode == 0, answer.stderr
        # And every container carries the deployment's label, the probe's too
        labelled = sut.docker("ps", "-q", "--filter", "label=io.loadfarm.deployment=byoc-hand").stdout.split()
        assert len(labelled) == 5
    finally:
        down = farm("stack", "down", "byoc-hand", cwd=workdir, env=env, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}
