"""What a cell's configuration costs: declared (Σ replicas × cost per replica, from the manifest) and measured
(the SUT's CPU time per request over the measured window), with a per-service breakdown.

Measured CPU comes from where the stack runs: on this host, from each service's process tree (its replicas and
their children, e.g. a monolith's forked workers), read when the window opens and closes (`ServiceCpu`); on a SUT
host, from the containers' cgroups, already sampled per container by the compose driver (`StackMetrics.resources`
windowed). A process that exits inside the window takes its CPU time with it (psutil cannot read the dead): the
figure is then a lower bound. Requests are the load generator's count over the same window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psutil

from farm.cpusets import stack_processes
from farm.stacks.manifest import StackManifest
from farm.stacks.scaling import declared_cost


class ServiceCpu:
    """CPU seconds of each service's processes (and their children) between `start` and `stop`, on this host."""

    def __init__(self, pids: Mapping[str, list[int]]) -> None:
        self.pids: dict[str, list[int]] = {s: list(p) for s, p in pids.items() if not s.startswith("setup:")}
        self._start: dict[str, float] | None = None

    def start(self) -> None:
        """The measured window opens."""
        self._start = self._seconds()

    def stop(self) -> dict[str, float] | None:
        """CPU seconds per service over the window (None if it never opened or nothing runs here)."""
        if self._start is None or not self.pids:
            return None
        end = self._seconds()
        return {s: round(max(0.0, end[s] - self._start.get(s, 0.0)), 4) for s in end}

    def replicas(self) -> dict[str, int]:
        """Processes started per service (its replicas)."""
        return {s: len(pids) for s, pids in self.pids.items()}

    def _seconds(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for service, pids in self.pids.items():
            total = 0.0
            for proc in stack_processes(pids):
                try:
                    times = proc.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    continue  # exited meanwhile
            totals[service] = total
        return totals


def containers_by_service(window: dict[str, Any] | None, project: str) -> tuple[dict[str, float], dict[str, int]]:
    """A SUT host's per-container CPU window summed per compose service (containers ``<project>-<service>-<n>``),
    and the replicas seen per service; containers whose CPU the host did not tell are left out."""
    cpu: dict[str, float] = {}
    replicas: dict[str, int] = {}
    for name, used in ((window or {}).get("services") or {}).items():
        match = re.fullmatch(re.escape(project) + r"[-_](.+)[-_]\d+", str(name))
        service = match.group(1) if match else str(name)
        replicas[service] = replicas.get(service, 0) + 1
        if isinstance(used, dict) and used.get("cpu_s") is not None:
            cpu[service] = cpu.get(service, 0.0) + float(used["cpu_s"])
    return cpu, replicas


def cell_cost(manifest: StackManifest, params: dict[str, Any], requests: int,
              cpu_s: dict[str, float] | None, replicas_seen: dict[str, int] | None = None) -> dict[str, Any]:
    """The cost fields of a cell (`record_result`'s ``cost``, ``cost_breakdown``, ``cpu_ms_per_request``).

    ``cost``: declared, Σ replicas × cost per replica over the scalable services the configuration runs (None
    for a stack that marks none). ``cpu_ms_per_request``: the SUT's CPU ms (every service, the balancer and a
    shared cache included) per request of the window (None when unmeasured or no request). ``cost_breakdown``:
    per service its replicas, cost per replica and cost (scalable services), CPU ms per request and share of the
    SUT's CPU (where measured).
    """
    cost, declared = declared_cost(manifest, {**manifest.defaults(), **params})
    breakdown: dict[str, dict[str, Any]] = {
        name: {**entry, "scalable": True} for name, entry in declared.items()}
    total = sum(cpu_s.values()) if cpu_s else None
    for service, seconds in (cpu_s or {}).items():
        entry = breakdown.setdefault(service, {"replicas": (replicas_seen or {}).get(service), "scalable": False})
        entry["cpu_ms_per_request"] = round(1000.0 * seconds / requests, 4) if requests else None
        entry["cpu_share"] = round(seconds / total, 4) if total else None
    per_request = round(1000.0 * total / requests, 4) if total is not None and requests else None
    return {"cost": cost, "cost_breakdown": breakdown or None, "cpu_ms_per_request": per_request}
