"""Issue 20 item 5: a stack that hangs on purpose is seen for what it is, through the real `farm run`.

The hanging stack (tests/stacks/hanging) runs its monolith fast (5 ms) but never answers every 20th request; its
microservices answer every request in 30 ms. Counting only the requests that finished, the monolith looked healthy
and faster (a p95 of ~20 ms against ~45 ms). Now its hanging requests started in the window count as failures of
kind unfinished with their elapsed time, the users stuck since the warm-up are seen as stalled, the cell is flagged,
and the verdict and the recommendation leave it out as the faster side and say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, farm, stray_processes

pytestmark = pytest.mark.integration

SWEEP = f"""name: hanging
stack: {ROOT / "tests" / "stacks" / "hanging"}
matrix:
  architecture: [monolith, microservices]
  users: [8]
load: {{spawn_rate: 20, duration: 2s, warmup: 1s}}
repetitions: 2
slo: {{p95_ms: 100, max_error_ratio: 0.2}}
"""


def test_a_stack_that_never_answers_some_requests_is_flagged_and_never_the_faster_side(workdir: Path) -> None:
    # Given a sweep of the hanging stack, both architectures, two repetitions
    (workdir / "sweep.yaml").write_text(SWEEP)
    # When it runs through the real farm
    run = farm("run", "sweep.yaml", cwd=workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    # Then every monolith cell counts its unfinished requests as failures, sees its stalled users, and is flagged;
    # its p95 of all requests is no longer the healthy one of its finished requests
    cells = json.loads(farm("results", "hanging", "--format", "json", cwd=workdir).stdout)
    by_arch: dict[str, list[dict]] = {}
    for cell in cells:
        by_arch.setdefault(cell["params"]["architecture"], []).append(cell)
    for cell in by_arch["monolith"]:
        assert cell["status"] == "done"
        assert cell["unfinished_requests"] >= 1 and cell["failures"] >= cell["unfinished_requests"], cell
        assert cell["users_stalled"] >= 1 and cell["users_active"] + cell["users_stalled"] <= 8, cell
        assert cell["load_stalled"] is True, cell
        assert cell["p99_ms"] >= 1000 > cell["p95_ok_ms"], cell  # the unfinished ones waited seconds
    # And microservices, which answer everything, hold Little's law with every user active
    for cell in by_arch["microservices"]:
        assert (cell["unfinished_requests"], cell["users_stalled"], cell["users_active"]) == (0, 0, 8), cell
        assert cell["load_stalled"] is False and cell["load_mismatch"] is False, cell
        assert 0.9 <= cell["concurrency_ratio"] <= 1.1, cell
    # And farm run printed a line for each flagged cell as it ended
    assert run.stdout.count("flagged ") == 2 and "users stalled" in run.stdout, run.stdout
    # And the verdict never takes the monolith as the faster side at 8 users, and says why
    report = json.loads(farm("report", "hanging", "--format", "json", cwd=workdir).stdout)
    [comparison] = report["comparisons"]
    [point] = comparison["points"]
    assert point["stalled"] == ["monolith"] and point["classification"] != "higher", point
    assert "left out as the faster side (users stalled or late starts, or load off Little's law): monolith at 8 " \
        "users" in comparison["description"]
    # And the recommendation never chooses the monolith (microservices, unless a busy host flagged their cells
    # too), and names the monolith point it left out
    first, *notes = report["recommendation"]
    assert "monolith" not in first, report["recommendation"]
    assert notes == ["left out (users stalled or late starts, or load off Little's law: latency a lower bound, never "
                     "meeting the SLO): monolith, - cache, 1 instance at 8 users"], report["recommendation"]
    assert {c["flag"] for c in report["flagged_cells"]} >= {"load_stalled"}
    # And farm status and the results table show the flags
    status = farm("status", "hanging", cwd=workdir)
    assert status.stdout.count("flagged ") == 2 and "users stalled" in status.stdout, status.stdout
    table = farm("results", "hanging", cwd=workdir)
    assert "users stalled" in table.stdout and "with stalled users or late starts" in table.stdout, table.stdout
    assert stray_processes(str(workdir)) == []
