"""`farm stack check DIR --sut HOST` (#17 item 5): a stack folder brought up once at 1 and 2 replicas on a real
SUT host through the compose driver, every contract point reported, nothing left behind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, farm
from tests.integration.sut import SutHost, base_image_tarball
from tests.integration.test_compose_sut import hosts_file, leftovers, sut

# two provisionings of a four-container project on a SUT host started for this module: minutes on a busy machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
__all__ = ["base_image_tarball", "sut"]  # fixtures: the module-scoped SUT host, as test_compose_sut has it

EXAMPLE = ROOT / "examples" / "stacks" / "classic-compose"


def points(stdout: str) -> dict[str, str]:
    """Each reported contract point's status, by its name (`ok      readiness ×2: …` → {'readiness ×2': 'ok'})."""
    found = re.findall(r"^(ok|note|problem) +([^:]+):", stdout, flags=re.MULTILINE)
    return {name: status for status, name in found}


def test_check_brings_the_teams_stack_up_at_one_and_two_replicas_and_reports_every_point(workdir: Path,
                                                                                         sut: SutHost) -> None:
    # Given the team's own compose file with the manifest `farm stack init` writes for it, its health path set
    # to the one the app answers (what init asks to check)
    folder = workdir / "classic"
    shutil.copytree(EXAMPLE, folder)
    (folder / "stack.yaml").unlink()
    init = farm("stack", "init", "--from", str(folder / "docker-compose.yml"), cwd=workdir)
    assert init.returncode == 0, init.stderr
    manifest = folder / "stack.yaml"
    manifest.write_text(manifest.read_text().replace("health: /  ", "health: /healthz", 1))
    env = {"FARM_HOSTS_FILE": str(hosts_file(sut, workdir / "farm-hosts.yaml"))}
    # When it is checked on the SUT host
    result = farm("stack", "check", str(folder), "--sut", "sutA", cwd=workdir, env=env, timeout=900)
    # Then every point of both provisionings is ok: up, readiness, each app replica one by one, metrics, teardown;
    # reset is a note (init declares none), and the exit code says no problem
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    found = points(result.stdout)
    for count in (1, 2):
        for point in ("up", "readiness", "replicas", "teardown"):
            assert found.get(f"{point} ×{count}") == "ok", (point, count, result.stdout)
        assert found.get(f"reset ×{count}") == "note", result.stdout
    assert "each answers, one by one: app#0, app#1" in result.stdout
    # And nothing is left on the SUT host
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}


def test_check_reports_reset_and_metrics_of_the_example_and_a_wrong_health_path(workdir: Path,
                                                                                 sut: SutHost) -> None:
    env = {"FARM_HOSTS_FILE": str(hosts_file(sut, workdir / "farm-hosts.yaml"))}
    # Given the example as its authors wrote it (reset in Redis, hit ratio from Redis, /metrics per replica)
    result = farm("stack", "check", str(EXAMPLE), "--sut", "sutA", cwd=workdir, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    found = points(result.stdout)
    # Then reset and metrics are checked on the host at both replica counts
    assert found.get("reset ×2") == "ok" and found.get("metrics ×2") == "ok", result.stdout
    assert re.search(r"metrics ×2: 2 document\(s\) in the contract's shape; \d+ hit\(s\)", result.stdout)
    # Given a copy whose health path the app does not answer
    folder = workdir / "wrong"
    shutil.copytree(EXAMPLE, folder)
    manifest = folder / "stack.yaml"
    manifest.write_text(manifest.read_text().replace("health: /healthz", "health: /nowhere"))
    wrong = farm("stack", "check", str(folder), "--sut", "sutA", cwd=workdir, env={
        **env, "FARM_READY_TIMEOUT_S": "20"}, timeout=900)
    # Then readiness is a problem with its fix, the exit code is 1, and it was still torn down
    assert wrong.returncode == 1, wrong.stdout[-4000:] + wrong.stderr[-2000:]
    assert points(wrong.stdout).get("readiness ×1") == "problem" and "set `health:`" in wrong.stdout
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}
