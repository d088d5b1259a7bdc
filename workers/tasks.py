"""Celery tasks: thin shells that decode ids, call domain code, and let the store decide who runs what."""

from __future__ import annotations

import signal
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_process_init, worker_process_shutdown

from scheduler.contract import EXECUTE_GROUPS
from scheduler.control import Reaper
from scheduler.search import advance
from workers.execution import STOPPING, run_groups
from workers.runtime import runtime

_REAPER: list[Reaper] = []


@shared_task(name=EXECUTE_GROUPS, acks_late=True, reject_on_worker_lost=True)
def execute_groups(sweep: str, groups: list[str], label: dict[str, Any] | None = None) -> dict[str, int]:
    """Run the given cell groups of a sweep on this host, one provisioning per group."""
    # SIGTERM reaching the pool process (a service manager stops the whole group) must not kill it mid-teardown:
    # it stops the running cell, tears the stack down and hands the unfinished cells back, then the task ends.
    # Installed per task: billiard resets the pool's handlers after worker_process_init.
    previous = signal.signal(signal.SIGTERM, lambda *_args: STOPPING.set())
    try:
        rt = runtime()
        return run_groups(rt, sweep, list(groups), after_group=lambda loaded: advance(rt.store, current_app, loaded))
    finally:
        signal.signal(signal.SIGTERM, previous)


@worker_process_init.connect
def _start_reaper(**_kwargs: Any) -> None:
    # The reaper thread lives in the pool process, started after the fork: a thread in the forking parent
    # could hold a lock (SQLAlchemy's, psycopg's) at fork time and deadlock the child.
    rt = runtime()
    _REAPER.append(Reaper(rt.store, current_app, rt.settings.reap_interval_s, rt.settings.max_attempts).start())


@worker_process_shutdown.connect
def _stop_reaper(**_kwargs: Any) -> None:
    for reaper in _REAPER:
        reaper.stop()
