"""How long the load generator waited for a CPU: the run-queue delay of Locust's threads over the measured window.

A busy CPU does not by itself delay the generator: it may be busy with work that gives way to it. What delays a
response's timing is the time Locust's thread, woken by the response, waits on a run queue before it runs; Linux
counts that per thread (``/proc/PID/task/TID/schedstat``: time on the CPU, time waiting on a run queue, time
slices run, all since the thread started). The mean wait per time slice over the window is what a woken
generator adds, on average, to each timing it takes (`farm.analysis.surfaces.generator_busy` judges it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class SchedSnapshot:
    """Per thread of the generator's processes: (ns on a CPU, ns waiting on a run queue, time slices)."""

    threads: dict[tuple[int, int], tuple[int, int, int]]


def snapshot(root: psutil.Process) -> SchedSnapshot | None:
    """The scheduler counters of ``root`` and its descendants' threads now (None where Linux does not keep them)."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    threads: dict[tuple[int, int], tuple[int, int, int]] = {}
    for proc in procs:
        tasks = Path(f"/proc/{proc.pid}/task")
        try:
            tids = [int(t.name) for t in tasks.iterdir()]
        except (OSError, ValueError):
            continue  # exited meanwhile
        for tid in tids:
            try:
                run, wait, slices = (int(x) for x in (tasks / str(tid) / "schedstat").read_text().split()[:3])
            except (OSError, ValueError):
                continue
            threads[(proc.pid, tid)] = (run, wait, slices)
    return SchedSnapshot(threads) if threads else None


def wait_ms_per_slice(before: SchedSnapshot | None, after: SchedSnapshot | None) -> float | None:
    """The generator's mean run-queue wait per time slice between two snapshots, in ms (None if unknown or idle).

    Threads started in between count from zero; threads gone by ``after`` are not counted."""
    if before is None or after is None:
        return None
    waited = slices = 0
    for key, (_run, wait, count) in after.threads.items():
        _r0, wait0, count0 = before.threads.get(key, (0, 0, 0))
        waited += max(0, wait - wait0)
        slices += max(0, count - count0)
    return None if slices == 0 else round(waited / slices / 1e6, 3)
