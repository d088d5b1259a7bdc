"""A sweep's progress as `farm status`, `farm run` and `farm serve` show it, read from the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from farm.store.repository import Store


@dataclass(frozen=True)
class Status:
    """A sweep's progress: cells by status and host, running cells, failures, and an ETA."""

    name: str
    sweep_status: str
    counts: dict[str, int]
    by_host: dict[str, dict[str, int]]
    running: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    eta_s: float | None

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """Whether no cell is waiting or running."""
        return self.counts.get("pending", 0) + self.counts.get("running", 0) == 0


def status(store: Store, name: str) -> Status:
    """Read a sweep's progress from the store (the source of truth)."""
    raw = store.progress(name)
    sweep = raw["sweep"]
    by_host: dict[str, dict[str, int]] = {}
    for host, state, n in raw["by_host"]:
        by_host.setdefault(host or "(not yet run)", {})[state] = n
    running = [{"host": h, "params": p, "repetition": r, "since": t} for h, p, r, t in raw["running"]]
    failed = [{"id": i, "params": p, "stage": st, "category": c, "message": m} for i, p, st, c, m in raw["failed"]]
    return Status(sweep.name, sweep.status, dict(sweep.counts), by_host, running, failed,
                  eta_s(sweep.counts, raw["first_start"]))


def eta_s(counts: dict[str, int], first_start: datetime | None) -> float | None:
    """Seconds left at the pace since the first finished cell started; None before one finished or after all."""
    done = counts.get("done", 0) + counts.get("skipped", 0) + counts.get("failed", 0)
    left = counts.get("pending", 0) + counts.get("running", 0)
    if not (done and left and first_start is not None):
        return None
    first = first_start if first_start.tzinfo else first_start.replace(tzinfo=UTC)
    return (datetime.now(UTC) - first).total_seconds() / done * left
