"""`farm run` killed outright (SIGKILL: no handler runs) leaves nothing running, and the next run resumes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import FARM, farm, stray_processes

pytestmark = [pytest.mark.integration]

SWEEP = """
name: killed
stack: sleepy
matrix: {users: [2, 4], delay_ms: [5]}
load: {spawn_rate: 10, duration: 2s, warmup: 1s}
"""


def running_cells(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM cells WHERE status = 'running'").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_killed_farm_run_takes_its_worker_and_stack_with_it_and_the_next_run_resumes(workdir: Path) -> None:
    # Given a farm run measuring its first cell
    (workdir / "sweep.yaml").write_text(SWEEP)
    proc = subprocess.Popen([*FARM, "run", "sweep.yaml"], cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while running_cells(workdir / "farm.db") == 0:
        assert proc.poll() is None and time.monotonic() < deadline, "no cell started"
        time.sleep(0.2)
    worker = [p for p in psutil.Process(proc.pid).children() if "worker" in " ".join(p.cmdline())]
    assert len(worker) == 1
    broker_socket = worker[0].environ()["FARM_BROKER_URL"].removeprefix("redis+socket://")
    assert broker_socket.endswith(".socket") and stray_processes(broker_socket) != []
    # When it is killed outright, so that none of its own clean-up runs
    proc.kill()
    proc.wait()
    # Then its worker stops too (warm: the running group is cancelled and its stack torn down), and nothing of the
    # run is left: no worker, no Locust, no stack process, no broker
    _gone, alive = psutil.wait_procs(worker, timeout=90)
    assert alive == [], [p.cmdline() for p in alive]
    deadline = time.monotonic() + 30
    while stray_processes(str(workdir)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stray_processes(str(workdir)) == []
    deadline = time.monotonic() + 30  # the embedded broker (a daemonised redis-server) is stopped by the worker
    while stray_processes(broker_socket) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stray_processes(broker_socket) == []
    # And a second run finishes every cell, the interrupted one included
    result = farm("run", "sweep.yaml", cwd=workdir, timeout=240)
    assert result.returncode == 0, result.stderr + result.stdout
    with sqlite3.connect(workdir / "farm.db") as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM cells")]
    assert statuses == ["done", "done"]
    assert stray_processes(str(workdir)) == []
