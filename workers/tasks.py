"""Celery tasks: thin shells that decode ids, call domain code, and let the store decide who runs what."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from scheduler.contract import EXECUTE_GROUPS
from workers.execution import run_groups
from workers.runtime import runtime


@shared_task(name=EXECUTE_GROUPS, acks_late=True, reject_on_worker_lost=True)
def execute_groups(sweep: str, groups: list[str], label: dict[str, Any] | None = None) -> dict[str, int]:
    """Run the given cell groups of a sweep on this host, one provisioning per group."""
    return run_groups(runtime(), sweep, list(groups))
