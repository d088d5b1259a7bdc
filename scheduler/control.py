"""Sweep control: status for `farm status` (from `farm.status`), cancel, resume, and the reaper of expired leases."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from celery import Celery

from farm.status import Status, status
from farm.store.repository import Store
from farm.stored import stored_sweep
from farm.stored_spec import stored_spec
from scheduler.dispatch import enqueue, redispatch_expired
from scheduler.search import advance

if TYPE_CHECKING:  # farm.search imports pandas: a second or two at every worker start
    from farm.search import Outcome

__all__ = ["Reaper", "Status", "resume", "status"]

log = logging.getLogger("loadfarm.reaper")


def resume(store: Store, app: Celery, name: str, targets: list[str] | None = None,
           stacks_dir: Path | None = None) -> tuple[int, list[Outcome]]:
    """Enqueue a sweep's unfinished cells again, and a capacity search's next step where a trajectory's latest
    probes had all finished when it stopped (nothing else would add it); returns the tasks sent for the cells, and
    the search's outcomes whose probes were added."""
    groups = store.reopen(name)
    tasks = enqueue(store, app, store.sweep(name), groups, targets)
    if not stored_spec(store.sweep_spec(name)[0]).search:
        return tasks, []
    return tasks, advance(store, app, stored_sweep(store, name, stacks_dir))


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
