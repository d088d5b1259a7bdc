"""Dispatch: store a sweep's plan and hand its placement units to Celery, ids only."""

from __future__ import annotations

from typing import Any

from celery import Celery

from farm.plan import expand
from farm.spec import LoadedSweep
from farm.store.leases import Leases
from farm.store.repository import Store, SweepInfo
from farm.stored_spec import stored_spec
from scheduler.contract import EXECUTE_GROUPS, payload
from scheduler.placement import units


def submit(store: Store, app: Celery, loaded: LoadedSweep) -> tuple[SweepInfo, int]:
    """Validate-plan-store (or find again) a sweep and enqueue its unfinished groups; returns (sweep, tasks)."""
    from scheduler.search import advance, start  # the search drives dispatch: imported here, not at the top

    plan = expand(loaded.spec, loaded.manifest)
    sweep = store.create_or_resume(loaded, plan)
    start(store, loaded)
    tasks = enqueue(store, app, sweep, store.reopen(sweep.name), loaded.spec.targets)
    advance(store, app, loaded)  # a search stopped between two steps takes its next one
    return sweep, tasks


def enqueue(store: Store, app: Celery, sweep: SweepInfo, group_ids: list[str], targets: list[str] | None = None,
            ) -> int:
    """Send one task per placement unit of the given groups; returns how many tasks were sent."""
    if not group_ids:
        return 0
    configs = store.group_configs(sweep.id)
    wanted = set(group_ids)
    placed = units([(g, configs[g]) for g in configs if g in wanted], targets or None,
                   compare=stored_spec(store.sweep_spec(sweep.name)[0]).comparison)
    Leases(store).mark_queued(group_ids)
    for unit in placed:
        send(app, sweep.name, list(unit.group_ids), unit.label, unit.queue)
    return len(placed)


def send(app: Celery, sweep_name: str, group_ids: list[str], label: dict[str, Any], queue: str) -> None:
    """One task: the sweep's name, group ids and a readable label."""
    app.send_task(EXECUTE_GROUPS, kwargs=payload(sweep_name, group_ids, label), queue=queue)


def redispatch_expired(store: Store, app: Celery, max_attempts: int = 3) -> list[str]:
    """Hand groups whose lease expired (their worker died) back to the queue, in placement units; a group
    with no attempt left fails instead, and its sweep is settled."""
    taken, given_up = Leases(store, max_attempts).expired()
    for sweep_name in given_up:
        store.settle(sweep_name)
    by_sweep: dict[str, list[str]] = {}
    for sweep_name, group_id in taken:
        by_sweep.setdefault(sweep_name, []).append(group_id)
    for sweep_name, group_ids in by_sweep.items():
        sweep = store.sweep(sweep_name)
        configs = store.group_configs(sweep.id)
        compare = stored_spec(store.sweep_spec(sweep_name)[0]).comparison
        for unit in units([(g, configs[g]) for g in configs if g in set(group_ids)], compare=compare):
            send(app, sweep_name, list(unit.group_ids), {**unit.label, "reaped": True}, unit.queue)
    return [g for _s, g in taken]
