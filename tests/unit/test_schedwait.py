"""The generator's run-queue wait (farm.load.schedwait): Linux's per-thread counters, read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from farm.load.schedwait import SchedSnapshot, snapshot, wait_ms_per_slice


def test_the_wait_is_the_waiting_over_the_slices_run_in_between_counting_new_threads_from_zero() -> None:
    # Given two threads: one waited 3 ms over 2 slices in between, one started meanwhile (1 ms over 2 slices)
    before = SchedSnapshot({(10, 10): (5_000_000, 1_000_000, 7)})
    after = SchedSnapshot({(10, 10): (9_000_000, 4_000_000, 9), (10, 11): (1_000_000, 1_000_000, 2)})
    # Then the mean wait per slice is 4 ms / 4 slices
    assert wait_ms_per_slice(before, after) == 1.0
    # And unknown (no counters, or nothing ran) is None
    assert wait_ms_per_slice(None, after) is None
    assert wait_ms_per_slice(before, before) is None


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="Linux only")
def test_a_running_process_tree_is_read() -> None:
    # Given a process whose child burns CPU
    code = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
            "'import time\\nend = time.time() + 3\\nwhile time.time() < end: pass']).wait()")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        # When its counters are read twice, half a second apart
        first = snapshot(psutil.Process(parent.pid))
        time.sleep(0.5)
        second = snapshot(psutil.Process(parent.pid))
        # Then both processes' threads are there, and the child ran slices: a wait is known, never negative
        assert first is not None and second is not None
        assert {pid for pid, _tid in second.threads} >= {parent.pid}
        assert len({pid for pid, _tid in second.threads}) == 2
        waited = wait_ms_per_slice(first, second)
        assert waited is not None and waited >= 0.0
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()
