"""Issue 9 item 10: the farm recovers a known crossover, and finds no difference between identical architectures.

The calibrated stack (tests/stacks/calibrated) answers each request after base + per_request × (requests in
flight) ms of sleep, with no think time in its locustfile: a cell of U users has U requests in flight, so its p95
is the model's latency at U (plus ~1 ms of sleep overshoot, the same on both sides). With ``model: crossing`` the
monolith takes 20 + 20U ms and microservices 170 + 5U ms: microservices are 120 and 60 ms slower at 2 and 6 users
and 60 ms faster at 14, and the p95 curves cross at exactly U = 10 users (the difference is linear in U, so the
farm's interpolation between grid loads finds 5 exactly). With ``model: identical`` both are 50 + 10U ms.

Two sweeps of 3 repetitions, duration 2 s and warm-up 1 s, run one after the other through the real ``farm run``
(a subprocess, as a user would; run side by side, the two farms' CPU stretched the p95 tails by up to 15 ms), and
their verdicts are read from ``farm report NAME --format json``. Measured wall time of this file on the 2-core
development machine: 131 s while other suites shared it (18 + 6 cells of ~4.5 s each, plus each sweep's start).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, farm, stray_processes

pytestmark = pytest.mark.integration

STACK = ROOT / "tests" / "stacks" / "calibrated"
CROSSING_USERS = 10.0  # 20 + 20U = 170 + 5U
SWEEP = """name: {name}
stack: {stack}
matrix:
  architecture: [monolith, microservices]
  model: [{model}]
  users: {users}
load: {{spawn_rate: 20, duration: 2s, warmup: 1s}}
repetitions: 3
"""


def _comparison(folder: Path, name: str) -> dict[str, Any]:
    """The one comparison of sweep ``name``'s JSON report."""
    result = farm("report", name, "--format", "json", cwd=folder)
    assert result.returncode == 0, result.stderr
    [comparison] = json.loads(result.stdout)["comparisons"]
    return comparison


def test_the_farm_recovers_a_known_crossover_and_no_difference_between_identical_architectures(
        tmp_path: Path) -> None:
    # Given two sweeps of the calibrated stack, 3 repetitions each: one whose p95 curves cross at 10 users
    # (measured at 2, 6 and 14 users), one whose two architectures are the same server (at 6 users)
    sweeps = {"crossing": [2, 6, 14], "identical": [6]}
    started = time.monotonic()
    for model, users in sweeps.items():
        (tmp_path / model).mkdir()
        (tmp_path / model / "sweep.yaml").write_text(
            SWEEP.format(name=model, stack=STACK, model=model, users=users))
        # When each runs through the real farm, as a user would run it
        result = farm("run", "sweep.yaml", cwd=tmp_path / model)
        assert result.returncode == 0, result.stderr + result.stdout
    elapsed = time.monotonic() - started
    # Then the crossing model's verdict is a crossover at ~10 users, microservices faster above, whose 95%
    # interval holds the known crossing and stays inside the grid
    crossing = _comparison(tmp_path / "crossing", "crossing")
    assert crossing["verdict"] == "crossover" and crossing["repetitions"] == 3, crossing
    assert crossing["indicative"] is False
    [found] = crossing["crossovers"]
    assert found["direction"] == "microservices faster above", found
    assert found["low"] <= CROSSING_USERS <= found["high"], found
    assert found["low"] >= 2 and found["high"] <= 14, found
    assert found["at"] == pytest.approx(CROSSING_USERS, abs=1.0), found
    # And every load is classified as the model says: microservices slower at 2 users, faster at 14, and at 6
    # users (60 ms slower) slower or not significantly different, never faster
    classes = {p["load"]: p["classification"] for p in crossing["points"]}
    assert classes[2] == "higher" and classes[14] == "lower", crossing["points"]
    assert classes[6] in ("higher", "inconclusive"), crossing["points"]
    # And the identical model's verdict is no significant difference, every load inconclusive
    same = _comparison(tmp_path / "identical", "identical")
    assert same["verdict"] == "no significant difference" and same["repetitions"] == 3, same
    assert same["crossovers"] == []
    assert {p["classification"] for p in same["points"]} == {"inconclusive"}
    # And the calibration stays within its time budget and leaves no process behind
    assert elapsed < 240, f"the two sweeps took {elapsed:.0f} s"
    assert stray_processes(str(tmp_path)) == []
