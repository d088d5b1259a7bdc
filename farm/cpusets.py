"""One host, fair shares: disjoint CPU sets for the load generator and the stack, and the host's CPU use.

When Locust and the stack run on the same host (the local driver), they compete for its cores: a busy generator
slows the stack it measures, and the stack's work steals the generator's. The farm pins them to disjoint sets —
the sweep's ``cpus: {generator: "3", stack: "0-2"}``, or by default a split of the CPUs this process may use:
the generator gets ceil(n / 4) of them (at least one per Locust process, never all), the stack the rest; on a
1-CPU host nothing is pinned (there is nothing to split) and the cell says so. Every process of the deployment
is pinned, its children too; a process the stack's recipe had already confined to some of the stack's CPUs
keeps that narrower set. Over the measured window the farm records the busy share of every CPU, of each set
and of the whole host, and the stack processes' own CPU; a cell whose stack set (or whole host) was at least
`SATURATED_PCT` busy is flagged: its latency includes waiting for a core.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from farm.cpulist import format_cpus, parse_cpus
from farm.errors import SpecError

SATURATED_PCT = 90.0


@dataclass(frozen=True)
class CpuSets:
    """The CPUs the generator and the stack may run on (disjoint), or why nothing was pinned."""

    generator: frozenset[int]
    stack: frozenset[int]
    note: str | None = None  # set when nothing is pinned, e.g. a 1-CPU host

    @property
    def pinned(self) -> bool:
        """Whether the two sets are applied."""
        return self.note is None

    def as_json(self) -> dict[str, Any]:
        """What a cell records: both sets as CPU lists (``"0-2"``), or the note that nothing was pinned."""
        if not self.pinned:
            return {"pinned": False, "note": self.note}
        return {"pinned": True, "generator": format_cpus(self.generator), "stack": format_cpus(self.stack)}


def available_cpus() -> frozenset[int]:
    """The CPUs this process may run on (a container or a cgroup may allow fewer than the host has)."""
    return frozenset(os.sched_getaffinity(0))


def choose_sets(available: frozenset[int], generator: str | None = None, stack: str | None = None,
                processes: int = 1) -> CpuSets:
    """The generator's and the stack's CPUs: the sweep's own, or the default split (see the module docstring).

    A set the sweep names must be non-empty, within ``available`` and disjoint from the other: else SpecError.
    """
    if generator is not None or stack is not None:
        gen = parse_cpus(generator) if generator is not None else frozenset()
        stk = parse_cpus(stack) if stack is not None else frozenset()
        gen = gen or available - stk
        stk = stk or available - gen
        missing = (gen | stk) - available
        if missing:
            raise SpecError(f"cpus: CPU {format_cpus(missing)} is not available here (this host offers "
                            f"{format_cpus(available)})")
        if not gen or not stk or gen & stk:
            raise SpecError(f"cpus: generator {format_cpus(gen) or '(none)'} and stack {format_cpus(stk) or '(none)'} "
                            "must be non-empty and disjoint")
        return CpuSets(gen, stk)
    if len(available) < 2:
        return CpuSets(available, available, note=f"not pinned: this host offers {len(available)} CPU")
    ordered = sorted(available)
    share = min(len(ordered) - 1, max(math.ceil(len(ordered) / 4), processes))
    return CpuSets(frozenset(ordered[-share:]), frozenset(ordered[:-share]))


def stack_processes(pids: Iterable[int]) -> list[psutil.Process]:
    """The given processes and all their descendants that are still alive."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in (root, *root.children(recursive=True)):
                found.setdefault(proc.pid, proc)
        except psutil.Error:
            continue
    return list(found.values())


def pin(processes: Iterable[psutil.Process], cpus: frozenset[int], available: frozenset[int]) -> int:
    """Confine every process to ``cpus``; one its recipe had confined to part of them keeps that part. Returns
    how many were pinned."""
    pinned = 0
    for proc in processes:
        try:
            own = frozenset(proc.cpu_affinity() or ())
            confined = own & cpus if own != available else frozenset()
            proc.cpu_affinity(sorted(confined or cpus))
            pinned += 1
        except psutil.Error:
            continue  # exited meanwhile
    return pinned


class HostCpu:
    """The busy share of each CPU, and the CPU time of the stack's processes, between `start` and `stop`."""

    def __init__(self, sets: CpuSets, stack_pids: Iterable[int]) -> None:
        self.sets = sets
        self.stack_pids = list(stack_pids)
        self._times: list[Any] | None = None
        self._stack_s = 0.0
        self._started = 0.0

    def start(self) -> None:
        """The measured window opens."""
        self._times = psutil.cpu_times(percpu=True)
        self._stack_s = _cpu_seconds(self.stack_pids)
        self._started = time.monotonic()

    def stop(self) -> dict[str, Any] | None:
        """The window closes: busy % of the host, of each set, per CPU, and the stack's CPU (None if not started)."""
        if self._times is None:
            return None
        after = psutil.cpu_times(percpu=True)
        elapsed = max(1e-9, time.monotonic() - self._started)
        busy = {cpu: _busy_pct(before, now) for cpu, (before, now) in enumerate(zip(self._times, after,
                                                                                     strict=False))}
        stack_s = max(0.0, _cpu_seconds(self.stack_pids) - self._stack_s)
        return {"host": _mean(busy.values()),
                "stack": _mean(busy[c] for c in self.sets.stack if c in busy) if self.sets.pinned else None,
                "generator": _mean(busy[c] for c in self.sets.generator if c in busy) if self.sets.pinned else None,
                "per_cpu": {str(c): round(v, 1) for c, v in busy.items()},
                "stack_cpu_s": round(stack_s, 3), "stack_cpu_pct": round(100.0 * stack_s / elapsed, 1)}


def saturated(usage: dict[str, Any] | None) -> bool | None:
    """Whether the stack's set, or the whole host, was at least SATURATED_PCT busy (None when not measured)."""
    if usage is None:
        return None
    return any(usage.get(k) is not None and usage[k] >= SATURATED_PCT for k in ("stack", "host"))


def _busy_pct(before: Any, after: Any) -> float:
    total = sum(after) - sum(before)
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    return 0.0 if total <= 0 else max(0.0, min(100.0, 100.0 * (1 - idle / total)))


def _mean(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(sum(found) / len(found), 1) if found else None


def _cpu_seconds(pids: Iterable[int]) -> float:
    total = 0.0
    for proc in stack_processes(pids):
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total
