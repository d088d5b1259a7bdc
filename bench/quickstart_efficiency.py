"""Bench: the quickstart sweep run by Loadfarm vs the classic per-cell script, side by side in one run.

(a) efficiency = total load time (warm-up + measured run, summed over cells) / wall time of `farm run`;
(b) the same cells run the way the classic script does it — per cell: bring the stack up, a fixed 30 s wait,
    one Locust run of the same length, tear the stack down — and the wall-time ratio farm / classic.

    .venv/bin/python bench/quickstart_efficiency.py [--sweep examples/quickstart.yaml] [--classic-wait 30]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from farm.load.runner import LoadRequest, LocustRunner
from farm.plan import expand
from farm.spec import load_sweep, locustfile_for
from farm.stacks.local import LocalDriver

ROOT = Path(__file__).resolve().parents[1]


def run_farm(sweep: Path, work: Path) -> float:
    """Wall time of `farm run` into a fresh database."""
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "farm", "run", str(sweep)], cwd=work,
                            capture_output=True, text=True)
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"farm run failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return wall


def run_classic(sweep: Path, work: Path, wait_s: float) -> float:
    """Wall time of the classic loop: per cell up, fixed wait, one Locust run, down."""
    loaded = load_sweep(sweep)
    spec = loaded.spec
    driver = LocalDriver(work / "deployments")
    runner = LocustRunner()
    start = time.monotonic()
    for cell in expand(spec, loaded.manifest).cells:
        deployment = driver.up(loaded.manifest, cell.stack_params(), f"classic-{cell.id}")
        try:
            time.sleep(wait_s)  # the script's `Start-Sleep 30` instead of a readiness check
            runner.run(LoadRequest(locustfile_for(loaded), deployment.entry_url, cell.users, spec.load.spawn_rate,
                                   spec.load.duration, spec.load.warmup, work / "classic" / cell.id))
        finally:
            driver.down(deployment)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", type=Path, default=ROOT / "examples" / "quickstart.yaml")
    parser.add_argument("--classic-wait", type=float, default=30.0)
    args = parser.parse_args()
    loaded = load_sweep(args.sweep.resolve())
    cells = len(expand(loaded.spec, loaded.manifest).cells)
    load_time = cells * (loaded.spec.load.warmup + loaded.spec.load.duration)
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        work = Path(tmp)
        farm_wall = run_farm(args.sweep.resolve(), work)
        classic_wall = run_classic(args.sweep.resolve(), work, args.classic_wait)
    print(f"sweep: {args.sweep.name}, {cells} cells, load time {load_time:.0f}s")
    print("| run | wall time | efficiency (load time / wall) |")
    print("|---|---|---|")
    print(f"| farm run | {farm_wall:.1f} s | {load_time / farm_wall:.1%} |")
    print(f"| classic loop ({args.classic_wait:.0f} s wait) | {classic_wall:.1f} s | {load_time / classic_wall:.1%} |")
    print(f"wall-time ratio farm / classic: {farm_wall / classic_wall:.2f}")


if __name__ == "__main__":
    main()
