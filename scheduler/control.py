"""Sweep control: status for `farm status`, cancel, resume, and the reaper of expired leases."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from farm.store.repository import Store
from scheduler.dispatch import enqueue, redispatch_expired

log = logging.getLogger("loadfarm.reaper")


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
    done = sweep.counts.get("done", 0) + sweep.counts.get("skipped", 0) + sweep.counts.get("failed", 0)
    left = sweep.counts.get("pending", 0) + sweep.counts.get("running", 0)
    eta = None
    if done and left and raw["first_start"] is not None:
        first = raw["first_start"] if raw["first_start"].tzinfo else raw["first_start"].replace(tzinfo=UTC)
        elapsed = (datetime.now(UTC) - first).total_seconds()
        eta = elapsed / done * left
    return Status(sweep.name, sweep.status, dict(sweep.counts), by_host, running, failed, eta)


def resume(store: Store, app: Celery, name: str, targets: list[str] | None = None) -> int:
    """Enqueue a sweep's unfinished cells again; returns the number of tasks sent."""
    groups = store.reopen(name)
    return enqueue(store, app, store.sweep(name), groups, targets)


class Reaper:
    """A background thread that hands back groups whose worker died (lease expired), every ``interval`` s."""

    def __init__(self, store: Store, app: Celery, interval: float, max_attempts: int = 3) -> None:
        self.store, self.app, self.interval, self.max_attempts = store, app, interval, max_attempts
        self.reaped: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reaper", daemon=True)

    def start(self) -> Reaper:
        """Start reaping in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reaped += redispatch_expired(self.store, self.app, self.max_attempts)
            except Exception as exc:  # the store or broker is away; try again next round
                log.warning("reaper: %s: %s", type(exc).__name__, " ".join(str(exc).split())[:300])
                time.sleep(self.interval)
