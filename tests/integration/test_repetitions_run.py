"""`farm run` with repetitions: a fresh stack per repetition, architectures alternating, in the plan's order."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from farm.plan import expand
from farm.spec import load_sweep
from tests.conftest import FARM, ROOT

pytestmark = pytest.mark.integration

# The sleepy server; every start of its service appends "<architecture>" to a log: one line per provisioning.
STACK = """
name: twin
locustfile: {root}/locustfiles/sleepy.py
health: /healthz
metrics: /metrics
reset: /admin/reset
parameters:
  architecture: {{type: str, default: monolith, values: [monolith, microservices]}}
local:
  entry: app
  services:
    - name: app
      instance: true
      command: [sh, -c, 'echo "{{{{ params.architecture }}}}" >> "$3"; exec "$0" "$1" --port "$2" --delay-ms 1',
                "{{{{ python }}}}", "{root}/stacks/sleepy/app/sleepy.py", "{{{{ port }}}}", "{log}"]
"""
SWEEP = """
name: {name}
stack: ./twin
matrix:
  architecture: [monolith, microservices]
  users: [1]
repetitions: 2
load: {{spawn_rate: 100, duration: 1s, warmup: 0.1s}}
"""


Outcome = tuple[list[str], list[tuple[str, int]], list[str]]


def start(folder: Path, name: str, extra: str = "") -> subprocess.Popen[str]:
    """Start `farm run` of a sweep of the twin stack in ``folder`` (its own store), as a user would."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "twin").mkdir(exist_ok=True)
    (folder / "twin" / "stack.yaml").write_text(STACK.format(root=ROOT, log=folder / f"{name}.starts"))
    (folder / f"{name}.yaml").write_text(SWEEP.format(name=name) + extra)
    env = {k: v for k, v in os.environ.items() if k != "FARM_DATABASE_URL"}
    return subprocess.Popen([*FARM, "run", f"{name}.yaml"], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def outcome(folder: Path, name: str, run: subprocess.Popen[str]) -> Outcome:
    """Wait for the run; (architecture per provisioning, (architecture, repetition) per cell in start order, the
    plan's (architecture, repetition) per group)."""
    out, err = run.communicate(timeout=300)  # a guard against a hang, not a speed limit
    assert run.returncode == 0, err + out
    with sqlite3.connect(folder / "farm.db") as conn:
        cells = conn.execute("SELECT c.params, c.repetition FROM cells c JOIN sweeps s ON s.id = c.sweep_id "
                             "WHERE s.name = ? ORDER BY c.started_at", (name,)).fetchall()
    started = [(json.loads(p)["architecture"], int(r)) for p, r in cells]
    loaded = load_sweep(folder / f"{name}.yaml")
    groups = expand(loaded.spec, loaded.manifest).groups
    planned = [f"{g.config['architecture']}:{g.cells[0].repetition}" for g in groups]
    return (folder / f"{name}.starts").read_text().split(), started, planned


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Both sweeps — reprovision by default ("fresh") and reprovision: false ("once") — run side by side, each in
    its own folder (they wait on the stack's sleeps, not on the CPU)."""
    root = tmp_path_factory.mktemp("repetitions")
    runs = {"fresh": start(root / "fresh", "fresh"), "once": start(root / "once", "once", "reprovision: false\n")}
    try:
        return {name: outcome(root / name, name, run) for name, run in runs.items()}
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()


def test_each_repetition_provisions_its_own_stack_and_the_architectures_alternate(
        outcomes: dict[str, Outcome]) -> None:
    # Given a sweep of 2 architectures × 2 repetitions (one load each) (reprovision by default); When it runs
    starts, cells, planned = outcomes["fresh"]
    # Then each (architecture, repetition) had its own provisioning: two per architecture
    assert sorted(starts) == ["microservices", "microservices", "monolith", "monolith"]
    # and the cells ran in the plan's order: one repetition's pair back to back, the first architecture alternating
    assert [f"{a}:{r}" for a, r in cells] == planned
    assert starts == [p.split(":")[0] for p in planned]
    assert starts[0] == starts[3] != starts[1] == starts[2]


def test_without_reprovision_one_stack_serves_every_repetition(outcomes: dict[str, Outcome]) -> None:
    # Given the same sweep with reprovision: false; When it runs
    starts, cells, _planned = outcomes["once"]
    # Then each architecture was provisioned once and ran its repetitions in a row
    assert sorted(starts) == ["microservices", "monolith"]
    assert [r for _a, r in cells] == [1, 2, 1, 2]
