"""Bench: the efficiency cost of a fresh stack per repetition (``reprovision``, the default) against one
provisioning for all repetitions (``reprovision: false``), side by side on the same sweep of the shop.

    .venv/bin/python bench/reprovision.py [--trials 2] [--repetitions 3]

Each trial runs the sweep once in each mode (the mode that goes first alternates between trials), through the
real ``farm run`` in a fresh working folder, and reads the store: wall time, provisionings (groups), and the time
spent inside cells (started → finished).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = """
name: reprov
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [local]
  users: [2, 4]
repetitions: {repetitions}
load: {{spawn_rate: 10, duration: 2s, warmup: 1s}}
reprovision: {reprovision}
"""


def run(reprovision: bool, repetitions: int) -> tuple[float, int, int, float]:
    """(wall seconds of `farm run`, provisionings, cells, seconds inside cells) of one run in a fresh folder."""
    with tempfile.TemporaryDirectory(prefix="farm-reprov-") as tmp:
        folder = Path(tmp)
        path = folder / "sweep.yaml"
        path.write_text(SWEEP.format(repetitions=repetitions, reprovision=str(reprovision).lower()))
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "farm", "run", str(path)], cwd=folder, capture_output=True,
                              text=True, timeout=1800)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(done.stderr + done.stdout)
        with sqlite3.connect(folder / "farm.db") as conn:
            groups = conn.execute("SELECT count(*) FROM cell_groups").fetchone()[0]
            spans = conn.execute("SELECT started_at, finished_at FROM cells WHERE status = 'done'").fetchall()
        inside = sum((datetime.fromisoformat(f) - datetime.fromisoformat(s)).total_seconds() for s, f in spans)
        return wall, int(groups), len(spans), inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, int, int, float]]] = {True: [], False: []}
    for trial in range(args.trials):
        for mode in ((True, False) if trial % 2 == 0 else (False, True)):
            results[mode].append(run(mode, args.repetitions))
            wall, groups, cells, inside = results[mode][-1]
            print(f"trial {trial + 1} reprovision={str(mode).lower():5}: {wall:6.1f} s wall, {groups} "
                  f"provisionings, {cells} cells, {inside:6.1f} s inside cells", flush=True)
    med = {mode: statistics.median(r[0] for r in rows) for mode, rows in results.items()}
    extra = results[True][0][1] - results[False][0][1]
    print(f"median wall: reprovision=true {med[True]:.1f} s, false {med[False]:.1f} s, ratio "
          f"{med[True] / med[False]:.2f}; {(med[True] - med[False]) / max(extra, 1):.2f} s per extra provisioning "
          f"({extra} extra)")


if __name__ == "__main__":
    main()
