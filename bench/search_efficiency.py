"""Bench: the capacity search against the full per-service grid it replaces, side by side on the calibrated stack
(``model: capacity``, whose cheapest configurations are known in closed form: tests/stacks/calibrated/capacity.py).

    .venv/bin/python bench/search_efficiency.py [--repetitions 1] [--loads 5,15,25]

Each sweep runs through the real ``farm run`` in a fresh working folder: the search (``search: {max_cost: 9}``)
and the grid of every replica count the search could reach at the same loads (monolith 1–3 instances;
microservices front 1–2 × hot 1–3 × cold 1–2). Printed: cells, provisionings and wall time of each, their ratios,
and whether both give the same cheapest cost per architecture and load (the answer), and the closed form's.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "stacks" / "calibrated"))
from capacity import SLO_P95_MS, cheapest  # noqa: E402  (the closed form, beside the stack it describes)

COMMON = """
stack: {stack}
load: {{spawn_rate: 100, duration: 2s, warmup: 1s}}
repetitions: {repetitions}
slo: {{p95_ms: {slo:g}}}
"""
SEARCH = """name: bench-search
matrix:
  architecture: [monolith, microservices]
  model: [capacity]
  users: [{loads}]
search: {{max_cost: 9}}
"""
GRID = """name: bench-grid
matrix:
  architecture: [monolith, microservices]
  model: [capacity]
  instances: [1, 2, 3]
  replicas.front: [1, 2]
  replicas.hot: [1, 2, 3]
  replicas.cold: [1, 2]
  users: [{loads}]
exclude:
  - {{architecture: microservices, instances: 2}}
  - {{architecture: microservices, instances: 3}}
"""


def run(text: str) -> tuple[float, int, int, dict[str, Any]]:
    """(wall seconds of `farm run`, cells, provisionings, the report's cost answer) of one sweep, fresh folder."""
    with tempfile.TemporaryDirectory(prefix="farm-search-") as tmp:
        folder = Path(tmp)
        path = folder / "sweep.yaml"
        path.write_text(text)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "farm", "run", str(path)], cwd=folder, capture_output=True,
                              text=True, timeout=7200)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:] + done.stdout[-3000:])
        with sqlite3.connect(folder / "farm.db") as conn:
            cells = conn.execute("SELECT count(*) FROM cells").fetchone()[0]
            groups = conn.execute("SELECT count(*) FROM cell_groups").fetchone()[0]
        name = "bench-search" if "bench-search" in text else "bench-grid"
        report = subprocess.run([sys.executable, "-m", "farm", "report", name, "--format", "json"], cwd=folder,
                                capture_output=True, text=True, timeout=600, check=True)
        return wall, int(cells), int(groups), json.loads(report.stdout)["cost_benefit"]


def costs(answer: list[dict[str, Any]]) -> dict[tuple[str, int], float | None]:
    """The cheapest cost per (architecture, load) of a report's cost answer."""
    out = {}
    for comparison in answer:
        for point in comparison["per_load"]:
            for arch in ("monolith", "microservices"):
                out[(arch, int(point["load"]))] = (point.get(arch) or {}).get("cost")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--loads", default="5,15,25")
    args = parser.parse_args()
    loads = [int(x) for x in args.loads.split(",")]
    common = COMMON.format(stack=ROOT / "tests" / "stacks" / "calibrated", repetitions=args.repetitions,
                           slo=SLO_P95_MS)
    search = run(SEARCH.format(loads=args.loads) + common)
    grid = run(GRID.format(loads=args.loads) + common)
    known = {(a, u): cheapest(a, u)[1] for a in ("monolith", "microservices") for u in loads}
    found_search, found_grid = costs(search[3]), costs(grid[3])
    print(f"{'':12} {'cells':>6} {'provisionings':>14} {'wall s':>8}")
    for label, (wall, cells, groups, _answer) in (("search", search), ("grid", grid)):
        print(f"{label:12} {cells:6d} {groups:14d} {wall:8.1f}")
    print(f"search / grid: cells {search[1] / grid[1]:.2f} (goal <= 0.40), wall time {search[0] / grid[0]:.2f}")
    for key in sorted(known):
        print(f"{key[0]:>13} {key[1]:3d} users: closed form {known[key]:g}, search {found_search.get(key)}, "
              f"grid {found_grid.get(key)}")
    same = all(found_search.get(k) == found_grid.get(k) for k in known)
    print(f"same answer as the grid: {'yes' if same else 'NO'}; "
          f"as the closed form: {'yes' if all(found_search.get(k) == known[k] for k in known) else 'NO'}")


if __name__ == "__main__":
    main()
