"""`farm run` with repetitions: a fresh stack per repetition, architectures alternating, in the plan's order."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from farm.plan import expand
from farm.spec import load_sweep
from tests.conftest import ROOT, farm

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


def run(folder: Path, name: str, extra: str = "") -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """Run a sweep; (architecture per provisioning, (architecture, repetition) per cell in start order, the
    plan's (architecture, repetition) per group)."""
    log = folder / f"{name}.starts"
    (folder / "twin").mkdir(exist_ok=True)
    (folder / "twin" / "stack.yaml").write_text(STACK.format(root=ROOT, log=log))
    path = folder / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name) + extra)
    result = farm("run", str(path), cwd=folder, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    with sqlite3.connect(folder / "farm.db") as conn:
        cells = conn.execute("SELECT c.params, c.repetition FROM cells c JOIN sweeps s ON s.id = c.sweep_id "
                             "WHERE s.name = ? ORDER BY c.started_at", (name,)).fetchall()
    started = [(json.loads(p)["architecture"], int(r)) for p, r in cells]
    loaded = load_sweep(path)
    groups = expand(loaded.spec, loaded.manifest).groups
    planned = [f"{g.config['architecture']}:{g.cells[0].repetition}" for g in groups]
    return log.read_text().split(), started, planned


def test_each_repetition_provisions_its_own_stack_and_the_architectures_alternate(workdir: Path) -> None:
    # Given a sweep of 2 architectures × 2 repetitions (one load each) (reprovision by default); When it runs
    starts, cells, planned = run(workdir, "fresh")
    # Then each (architecture, repetition) had its own provisioning: two per architecture
    assert sorted(starts) == ["microservices", "microservices", "monolith", "monolith"]
    # and the cells ran in the plan's order: one repetition's pair back to back, the first architecture alternating
    assert [f"{a}:{r}" for a, r in cells] == planned
    assert starts == [p.split(":")[0] for p in planned]
    assert starts[0] == starts[3] != starts[1] == starts[2]


def test_without_reprovision_one_stack_serves_every_repetition(workdir: Path) -> None:
    # Given the same sweep with reprovision: false; When it runs
    starts, cells, _planned = run(workdir, "once", "reprovision: false\n")
    # Then each architecture was provisioned once and ran its repetitions in a row
    assert sorted(starts) == ["microservices", "monolith"]
    assert [r for _a, r in cells] == [1, 2, 1, 2]
