"""Bench: wall time of `farm report NAME --format json` on the quickstart sweep, beside `farm status NAME`.

    .venv/bin/python bench/report_latency.py [--runs 10] [--keep DIR]

Builds a SQLite store holding the quickstart sweep (examples/quickstart.yaml: both architectures, three
cache settings, its repetitions: 30 cells when bench/RESULTS.md was measured, 45 since it runs three) with
synthetic measurements and response-time histograms, then times whole
`farm` processes in turn: `farm report quickstart --format json`, the same through the full command path
(`farm --debug report …`, the path the fast one must print the same JSON as), `farm status quickstart`, and a
bare interpreter start. Prints the median of each and the ratio to the 1 s goal; checks that both report paths
print the same document.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import load_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 1.0


def build_store(folder: Path) -> str:
    """A store with the quickstart sweep done (synthetic figures); returns its URL."""
    url = f"sqlite:///{folder / 'farm.db'}"
    store = Store(url)
    store.migrate()
    loaded = load_sweep(ROOT / "examples" / "quickstart.yaml")
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    rng = np.random.default_rng(7)
    for cell in plan.cells:
        p = cell.params
        base = (10 + 0.8 * cell.users) if p["architecture"] == "monolith" else (18 + 0.4 * cell.users)
        samples = np.maximum(1, np.round(rng.normal(base, base * 0.15, 2000))).astype(int)
        values, counts = np.unique(samples, return_counts=True)
        hist = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
        total = EndpointStats("", "Aggregated", 2000, 0, cell.users * 4.0, float(samples.mean()),
                              *(float(np.percentile(samples, q)) for q in (50, 90, 95, 99)), float(samples.max()),
                              hist)
        store.mark_running(cell.id, {"name": "bench-host", "cpu_model": "bench", "cores": 2})
        hits = None if p["cache"] == "none" else 1500
        store.record_result(cell.id, LoadResult((), total, 5.0, 3.0, 30.0, False, None),
                            StackMetrics(hits, None if hits is None else 500, []))
    store.settle(loaded.spec.name)
    return url


def farm_command() -> list[str]:
    """The installed `farm` script beside this interpreter, as a user runs it (else `python -m farm`)."""
    script = Path(sys.executable).with_name("farm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "farm"]


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall seconds from a process's start to its exit, its CPU seconds (user + system: less sensitive to a busy
    machine than wall time), and what it printed; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", type=Path, default=None, help="build the store in this folder and leave it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="farm-report-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        env = {**os.environ, "FARM_DATABASE_URL": build_store(folder)}
        farm = farm_command()
        commands = {
            "interpreter start (python -c pass)": [sys.executable, "-c", "pass"],
            "farm report quickstart --format json": [*farm, "report", "quickstart", "--format", "json"],
            "farm report quickstart --format json (full path)": [*farm, "--debug", "report", "quickstart",
                                                                 "--format", "json"],
            "farm status quickstart": [*farm, "status", "quickstart"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        printed = {name: run(command, folder, env)[2] for name, command in commands.items()}  # warm the caches
        fast, full = printed["farm report quickstart --format json"], \
            printed["farm report quickstart --format json (full path)"]
        assert fast == full, "the two report paths printed different documents"
        for _ in range(args.runs):  # in turn, so that a drift of the machine's speed touches every command alike
            for name, command in commands.items():
                wall, used, _ = run(command, folder, env)
                times[name].append(wall)
                cpu[name].append(used)
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"the quickstart sweep (examples/quickstart.yaml), SQLite store; median of {args.runs} runs each, "
          "whole process, in turn")
    print(f"load average over the last minute: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
    print("| command | median wall | min – max | median CPU (user + sys) | wall: ratio to 1 s goal |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        value = statistics.median(values)
        goal = f"{value / GOAL_S:.2f}" if name.startswith("farm") else "–"
        print(f"| `{name}` | {value * 1000:.0f} ms | {min(values) * 1000:.0f} – {max(values) * 1000:.0f} ms "
              f"| {statistics.median(cpu[name]) * 1000:.0f} ms | {goal} |")


if __name__ == "__main__":
    main()
