"""CPU sets for generator and stack on one host (issue 9 item 7): lists, the default split, the sweep's own."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from farm.cpusets import CpuSets, HostCpu, choose_sets, format_cpus, parse_cpus, pin, saturated, stack_processes
from farm.errors import SpecError


def test_cpu_lists_read_and_write_as_linux_does() -> None:
    assert parse_cpus("0-2,5") == {0, 1, 2, 5} and parse_cpus(3) == {3}
    assert format_cpus({5, 0, 1, 2}) == "0-2,5" and format_cpus({1, 3}) == "1,3"
    for bad in ("", "a", "2-1", "1-", "-1"):
        with pytest.raises(ValueError, match=r"CPU list|empty"):
            parse_cpus(bad)


@pytest.mark.parametrize(("cpus", "processes", "generator", "stack"), [
    (2, 1, "1", "0"), (4, 1, "3", "0-2"), (8, 1, "6-7", "0-5"), (8, 3, "5-7", "0-4"), (2, 4, "1", "0"),
])
def test_by_default_the_generator_gets_a_quarter_at_least_one_per_process_never_all(
        cpus: int, processes: int, generator: str, stack: str) -> None:
    # Given a host with `cpus` CPUs and `processes` Locust processes
    sets = choose_sets(frozenset(range(cpus)), processes=processes)
    # Then the sets are disjoint, cover the host, and split as documented
    assert sets.pinned and sets.as_json() == {"pinned": True, "generator": generator, "stack": stack}


def test_a_one_cpu_host_is_not_pinned_and_says_so() -> None:
    sets = choose_sets(frozenset({0}))
    assert not sets.pinned and sets.as_json() == {"pinned": False, "note": "not pinned: this host offers 1 CPU"}


def test_the_sweeps_sets_are_used_and_checked_against_the_host() -> None:
    host = frozenset(range(4))
    assert choose_sets(host, "3", "0-1").as_json()["stack"] == "0-1"
    assert choose_sets(host, generator="3").as_json()["stack"] == "0-2"  # the rest
    with pytest.raises(SpecError, match="CPU 7 is not available here"):
        choose_sets(host, "7", "0")
    with pytest.raises(SpecError, match="must be non-empty and disjoint"):
        choose_sets(frozenset({0}), generator="0")


def test_saturation_is_the_stack_set_or_the_whole_host_at_90_percent() -> None:
    assert saturated(None) is None
    assert saturated({"host": 60.0, "stack": 95.0}) is True
    assert saturated({"host": 91.0, "stack": None}) is True
    assert saturated({"host": 60.0, "stack": 89.0}) is False


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs")
def test_a_process_and_its_children_are_pinned_and_their_cpu_measured() -> None:
    # Given a process that starts a child which burns CPU
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import time\\nend = time.time() + 3\\nwhile time.time() < end: pass']); c.wait()")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        cpu = min(os.sched_getaffinity(0))
        sets = CpuSets(frozenset(os.sched_getaffinity(0)) - {cpu}, frozenset({cpu}))
        usage = HostCpu(sets, [parent.pid])
        # When they are pinned to one CPU and measured for a second
        procs = stack_processes([parent.pid])
        assert pin(procs, sets.stack, frozenset(os.sched_getaffinity(0))) == 2
        usage.start()
        time.sleep(1.0)
        measured = usage.stop()
        # Then both run on that CPU only, and the child's busy loop shows in the stack's CPU (how much of a core
        # it got depends on what else this machine runs) and in its set's
        assert all(p.cpu_affinity() == [cpu] for p in procs)
        assert measured is not None and measured["stack_cpu_pct"] > 5 and measured["stack"] > 5, measured
        assert measured["per_cpu"][str(cpu)] == measured["stack"]
    finally:
        parent.kill()
        for child in psutil.Process(os.getpid()).children(recursive=True):
            child.kill()
