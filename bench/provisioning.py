"""Bench: provisioning the shop as processes here vs as Docker Compose on a SUT host, and the per-cell overhead
of reset and metrics (plus the SUT's CPU sample over SSH), side by side in one run.

    .venv/bin/python bench/provisioning.py [--reps 3]

Needs root, Docker (docker.io), debootstrap, sshd and nginx: the SUT host is the tests' own (a network namespace
with dockerd and sshd, tests/integration/sut.py), its base image built once and cached. Images are cached on
the host after the first compose run (by context hash), so what is timed is `up --wait --scale`, readiness from
here, the connectivity check, and teardown.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.remote.baseimage import rootfs_tarball
from farm.remote.hosts import load_hosts
from farm.remote.shell import ssh_connector
from farm.stacks import contract
from farm.stacks.compose import ComposeDriver
from farm.stacks.driver import StackDriver
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from tests.integration.sut import SutHostFixture, base_image_cache

ROOT = Path(__file__).resolve().parents[1]
SHOP = load_manifest(ROOT / "stacks" / "shop")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def provision(driver: StackDriver, instances: int, name: str) -> tuple[float, float, float]:
    """Seconds to bring the shop up and ready, median seconds of reset+metrics per cell, and teardown seconds."""
    params = {**SHOP.defaults(), "architecture": "monolith", "cache": "local", "instances": instances}
    started = time.perf_counter()
    deployment = driver.up(SHOP, params, name)
    driver.ready(deployment, time.monotonic() + 120)
    driver.check_instances(deployment)
    up = time.perf_counter() - started
    per_cell = statistics.median(timed(lambda: (driver.reset(deployment), driver.metrics(deployment),
                                               driver.metrics(deployment))) for _ in range(5))
    down = timed(lambda: driver.down(deployment))
    return up, per_cell, down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    tarball = rootfs_tarball(base_image_cache())
    with tempfile.TemporaryDirectory() as tmp, SutHostFixture(tarball) as sut:
        host = load_hosts(sut.hosts_file(Path(tmp) / "hosts.yaml"))["sutA"]
        drivers: dict[str, StackDriver] = {
            "process (here)": LocalDriver(Path(tmp) / "local"),
            "compose (SUT host, SSH)": ComposeDriver(host, Path(tmp) / "remote", ssh_connector(10.0)),
        }
        provision(drivers["compose (SUT host, SSH)"], 1, "warm-images")  # the first run builds the image
        rows = []
        for instances in (1, 3):
            results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in drivers}
            for rep in range(args.reps):  # interleaved, so drift hits both alike
                for label, driver in drivers.items():
                    results[label].append(provision(driver, instances, f"bench-{instances}-{rep}"))
            for label, runs in results.items():
                rows.append((instances, label, *(statistics.median(r[i] for r in runs) for i in range(3))))
        print(f"{'instances':>9}  {'driver':<26} {'up+ready s':>10} {'reset+2×metrics ms':>19} {'down s':>7}")
        for instances, label, up, per_cell, down in rows:
            print(f"{instances:>9}  {label:<26} {up:>10.2f} {per_cell * 1000:>19.0f} {down:>7.2f}")
        for instances in (1, 3):
            local, remote = (r for r in rows if r[0] == instances)
            print(f"ratio compose/process at {instances} instance(s): up {remote[2] / local[2]:.1f}×, "
                  f"per-cell overhead {remote[3] / local[3]:.1f}×, down {remote[4] / local[4]:.1f}×")
        # What the SSH sample alone costs per reading (the HTTP part is the same for both drivers)
        params = {**SHOP.defaults(), "architecture": "monolith", "cache": "local", "instances": 3}
        compose = drivers["compose (SUT host, SSH)"]
        deployment = compose.up(SHOP, params, "bench-sample")
        compose.ready(deployment, time.monotonic() + 120)
        http = statistics.median(timed(lambda: contract.metrics(deployment)) for _ in range(7))
        full = statistics.median(timed(lambda: compose.metrics(deployment)) for _ in range(7))
        compose.down(deployment)
        print(f"metrics reading at 3 instances: HTTP only {http * 1000:.0f} ms, with the SUT's CPU sample over SSH "
              f"{full * 1000:.0f} ms (×{full / http:.1f}); two readings per cell")


if __name__ == "__main__":
    main()
