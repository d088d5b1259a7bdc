"""Bench: wall time of `farm status NAME` and `farm sweeps` on a 10,000-cell sweep, interpreter start included.

    .venv/bin/python bench/cli_latency.py [--runs 15] [--keep DIR]

Builds a SQLite store holding a 10,000-cell sweep of the `sleepy` stack (100 loads × 100 delays; some cells
running on two hosts, some failed) with the store API, then times whole `farm` processes, side by side in turn:
the fast read path (`farm status NAME`, `farm sweeps`), the full path of the same commands (`farm --debug …`, which
the fast path leaves to Typer, SQLAlchemy and the rest, printing the same thing), and a bare interpreter start.
Prints the median of each and the ratios fast/full and fast/goal (200 ms). --keep DIR leaves the store there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.plan import expand
from farm.spec import parse_sweep
from farm.store.repository import Store

SWEEP = """
name: big
stack: sleepy
matrix:
  users: [{users}]
  delay_ms: [{delays}]
load: {{spawn_rate: 50, duration: 10s, warmup: 2s}}
"""
GOAL_S = 0.2


def build_store(folder: Path) -> str:
    """A store with one 10,000-cell sweep under way; returns its URL."""
    url = f"sqlite:///{folder / 'farm.db'}"
    store = Store(url)
    store.migrate()
    text = SWEEP.format(users=", ".join(map(str, range(1, 101))), delays=", ".join(map(str, range(1, 101))))
    loaded = parse_sweep(text, source="big.yaml", base=folder)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    for i, cell in enumerate(plan.cells[:2]):
        store.mark_running(cell.id, {"name": f"host-{i}"})
    store.record_failure([c.id for c in plan.cells[2:7]], "reset", "internal", "JSONDecodeError: Expecting value")
    return url


def farm_command() -> list[str]:
    """The installed `farm` script beside this interpreter, as a user runs it (else `python -m farm`)."""
    script = Path(sys.executable).with_name("farm")
    return [str(script)] if script.exists() else [sys.executable, "-m", "farm"]


def wall(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds from a process's start to its exit; it must succeed."""
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", type=Path, default=None, help="build the store in this folder and leave it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="farm-cli-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        url = build_store(folder)
        env = {**os.environ, "FARM_DATABASE_URL": url}
        farm = farm_command()
        commands = {
            "interpreter start (python -c pass)": [sys.executable, "-c", "pass"],
            "farm status big (fast path)": [*farm, "status", "big"],
            "farm status big (full path)": [*farm, "--debug", "status", "big"],
            "farm sweeps (fast path)": [*farm, "sweeps"],
            "farm sweeps (full path)": [*farm, "--debug", "sweeps"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():  # warm the file cache once
            wall(command, folder, env)
        for _ in range(args.runs):  # in turn, so that a drift of the machine's speed touches every command alike
            for name, command in commands.items():
                times[name].append(wall(command, folder, env))
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"10,000-cell sweep, SQLite store; median of {args.runs} runs each, whole process, in turn")
    print("| command | median wall | min – max | fast / full | ratio to 200 ms goal |")
    print("|---|---|---|---|---|")
    for name, value in median.items():
        full = median.get(name.replace("(fast path)", "(full path)")) if "(fast path)" in name else None
        ratio = f"{value / full:.2f}" if full else "–"
        goal = f"{value / GOAL_S:.2f}" if name.startswith("farm") else "–"
        print(f"| `{name}` | {value * 1000:.0f} ms | {min(times[name]) * 1000:.0f} – {max(times[name]) * 1000:.0f} ms "
              f"| {ratio} | {goal} |")


if __name__ == "__main__":
    main()
