"""Driving a capacity search: after a group ends (the worker that ran it) or when a sweep looks finished
(`farm run` watching it), add the search's next probes as new groups and hand them to the queue.

The decision is `farm.search.next_step`, a pure function of the cells stored so far; groups and cells have ids
that depend only on what they measure, so two callers deciding the same step at once add it once (the second
insert finds it stored, or fails and is retried against what the first stored).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import Celery

from farm.analysis.records import cell_record
from farm.errors import StoreError
from farm.life import STOPPED
from farm.spec import LoadedSweep
from farm.store.probes import add_probe_groups, mark_start
from farm.store.repository import Store
from scheduler.dispatch import enqueue

if TYPE_CHECKING:
    from farm.search import Outcome

log = logging.getLogger("loadfarm.search")
START = {"step": 0, "why": "start: one replica of every scalable service"}


def start(store: Store, loaded: LoadedSweep) -> None:
    """Mark a search's first cells (the plan's) as its step 0."""
    if loaded.spec.search is not None:
        mark_start(store, loaded.spec.name, START)


def outcomes(store: Store, loaded: LoadedSweep) -> list[Outcome]:
    """Where every trajectory of a search stands now (empty for a sweep without a search)."""
    if loaded.spec.search is None:
        return []
    # pandas only for a search: every worker imports this module, and pandas costs it a second or two to start
    from farm.analysis.frame import histogram_frame
    from farm.search import next_step

    rows = store.cells(loaded.spec.name)
    return next_step([cell_record(c) for c in rows], histogram_frame(rows), loaded.spec, loaded.manifest).outcomes


def advance(store: Store, app: Celery, loaded: LoadedSweep) -> list[Outcome]:
    """Add and enqueue the search's next probes; returns the outcomes whose probes this call added."""
    spec = loaded.spec
    if spec.search is None or store.sweep_status(spec.name) in STOPPED:
        return []
    found = [o for o in outcomes(store, loaded) if o.probe is not None]
    if not found:
        return []
    from farm.search import probe_groups

    groups, why = probe_groups(spec, [o.probe for o in found if o.probe is not None])
    try:
        added = add_probe_groups(store, spec.name, groups, why)
    except StoreError:  # another caller stored the same step at the same moment: what is left is added now
        added = add_probe_groups(store, spec.name, groups, why)
    if not added:
        return []
    enqueue(store, app, store.sweep(spec.name), added, spec.targets or None)
    for outcome in found:
        log.info("search %s: %s", spec.name, outcome.text)
    return found
