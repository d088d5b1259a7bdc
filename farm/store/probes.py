"""Capacity-search probes in the store: new groups of probe cells added to a running sweep, and why each was taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update

from farm.life import GroupStatus, SweepStatus
from farm.plan import Group
from farm.store.models import CellRow, GroupRow, SweepRow, utcnow
from farm.store.repository import Store
from farm.store.sweeps import pending_row


def add_probe_groups(store: Store, name: str, groups: list[Group], why: dict[str, Any]) -> list[str]:
    """Store new groups of pending probe cells (each cell with its ``probe``) in a sweep; groups and cells already
    stored are skipped, so adding the same step twice adds it once. Returns the ids of the groups added."""
    sweep = store.sweep(name)
    if not groups:
        return []
    with store.session() as s:
        known_groups = set(s.scalars(select(GroupRow.id).where(GroupRow.id.in_([g.id for g in groups]))))
        wanted = [c for g in groups for c in g.cells]
        known_cells = set(s.scalars(select(CellRow.id).where(CellRow.id.in_([c.id for c in wanted]))))
        fresh = [g for g in groups if g.id not in known_groups]
        if not fresh:
            return []
        group_at = (s.scalar(select(func.max(GroupRow.position)).where(GroupRow.sweep_id == sweep.id)) or 0) + 1
        cell_at = (s.scalar(select(func.max(CellRow.position)).where(CellRow.sweep_id == sweep.id)) or 0) + 1
        s.execute(insert(GroupRow), [{"id": g.id, "sweep_id": sweep.id, "config": g.config, "position": group_at + i,
                                      "status": GroupStatus.PENDING} for i, g in enumerate(fresh)])
        cells = [c for g in fresh for c in g.cells if c.id not in known_cells]
        if cells:
            s.execute(insert(CellRow), [pending_row(c, sweep.id, cell_at + i, why.get(c.id))
                                        for i, c in enumerate(cells)])
        # A sweep settled as done while its last step was being decided runs again.
        settled_or_new = SweepRow.status.in_((SweepStatus.DONE, SweepStatus.PENDING))
        s.execute(update(SweepRow).where(SweepRow.id == sweep.id, settled_or_new)
                  .values(status=SweepStatus.RUNNING, updated_at=utcnow()))
        return [g.id for g in fresh]


def mark_start(store: Store, name: str, why: dict[str, Any]) -> None:
    """Give a search's first cells (the plan's, one replica each) their ``probe``, where they have none."""
    sweep = store.sweep(name)
    with store.session() as s:
        rows = s.execute(select(CellRow.id, CellRow.probe).where(CellRow.sweep_id == sweep.id)).all()
        bare = [cid for cid, probe in rows if not isinstance(probe, dict)]  # SQL NULL or JSON null
        if bare:
            s.execute(update(CellRow).where(CellRow.id.in_(bare)).values(probe=why))
