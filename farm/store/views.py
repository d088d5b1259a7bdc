"""What the live views read of a sweep's cells: `farm run` and `farm status --watch` (cells as they end, flagged
cells, a search's reasons) and `farm serve` (sweeps with their ETA, a sweep's version, its cells).

Plain selects of the few columns each view shows, so that they answer in milliseconds on a 10,000-cell sweep, and
return the read shapes of `farm.status`, never rows: the commands and the web view import no SQLAlchemy for them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, select

from farm.life import ENDED, CellStatus, eta_s
from farm.load.stats import TOTAL
from farm.status import LOAD_COLUMNS, CellLine, EndedCell, SweepLine, flagged_cell
from farm.store.database import Database
from farm.store.models import CellRow, MeasurementRow, SweepRow
from farm.store.sweeps import SweepStore


def ended_cells(store: Database, sweep_id: int, limit: int | None) -> list[EndedCell]:
    """A sweep's ended cells, the latest first (at most ``limit``)."""
    query = (select(CellRow.id, CellRow.params, CellRow.status, CellRow.error_stage, CellRow.error_category,
                    CellRow.error_message, CellRow.finished_at, CellRow.warnings,
                    *(getattr(CellRow, c) for c in LOAD_COLUMNS))
             .where(CellRow.sweep_id == sweep_id, CellRow.status.in_(ENDED), CellRow.finished_at.is_not(None))
             .order_by(CellRow.finished_at.desc()).limit(limit))
    with store.session() as s:
        return [EndedCell(str(i), dict(p), str(st), stage, cat, msg, at, tuple(w or ()),
                          dict(zip(LOAD_COLUMNS, load, strict=True)))
                for i, p, st, stage, cat, msg, at, w, *load in s.execute(query)]


def flagged_cells(store: Database, sweep_id: int) -> list[dict[str, Any]]:
    """A sweep's done cells whose users stalled, whose starts fell behind, or whose load broke Little's law."""
    query = (select(CellRow.id, CellRow.params, *(getattr(CellRow, c) for c in LOAD_COLUMNS))
             .where(CellRow.sweep_id == sweep_id, CellRow.status == CellStatus.DONE,
                    CellRow.load_stalled.is_(True) | CellRow.load_mismatch.is_(True))
             .order_by(CellRow.position).limit(20))
    with store.session() as s:
        return [flagged_cell(str(i), dict(p), load) for i, p, *load in s.execute(query)]


def probes(store: Database, sweep_id: int) -> list[tuple[str, Any]]:
    """(cell id, why a capacity search measures it, or None) of every cell of a sweep, in plan order."""
    with store.session() as s:
        rows = s.execute(select(CellRow.id, CellRow.probe).where(CellRow.sweep_id == sweep_id)
                         .order_by(CellRow.position)).all()
    return [(str(cid), probe) for cid, probe in rows]


def sweep_lines(store: SweepStore) -> list[SweepLine]:
    """Every sweep, newest first, with its counts and ETA."""
    with store.session() as s:
        firsts = dict(s.execute(select(CellRow.sweep_id, func.min(CellRow.started_at))
                                .where(CellRow.status == CellStatus.DONE).group_by(CellRow.sweep_id)).all())
    return [SweepLine(info, eta_s(info.counts, firsts.get(info.id))) for info in store.sweeps()]


def version(store: Database, name: str) -> tuple[Any, ...]:
    """What changes whenever a cell of the sweep changes state or lands: the key of its cached answer."""
    with store.session() as s:
        row = s.execute(select(SweepRow.id, SweepRow.status).where(SweepRow.name == name)).one_or_none()
        if row is None:
            return ()
        counts = s.execute(select(CellRow.status, func.count(), func.max(CellRow.finished_at))
                           .where(CellRow.sweep_id == row.id).group_by(CellRow.status)
                           .order_by(CellRow.status)).all()
    return (row.status, *((status, int(n), _stamp(last)) for status, n, last in counts))


def cell_lines(store: SweepStore, name: str, *, limit: int | None = None) -> list[CellLine]:
    """The sweep's cells, the latest to finish (or start) first; at most ``limit`` of them."""
    sweep = store.sweep(name)
    latest = func.coalesce(CellRow.finished_at, CellRow.started_at)
    query = (select(CellRow.id, CellRow.params, CellRow.repetition, CellRow.status, CellRow.host,
                    CellRow.finished_at, MeasurementRow.p95_ms, MeasurementRow.rps, CellRow.error_stage,
                    CellRow.error_category, CellRow.error_message, CellRow.artefacts)
             .outerjoin(MeasurementRow, and_(MeasurementRow.cell_id == CellRow.id, MeasurementRow.name == TOTAL))
             .where(CellRow.sweep_id == sweep.id)
             .order_by(latest.is_(None), latest.desc(), CellRow.position))
    if limit is not None:
        query = query.limit(limit)
    with store.session() as s:
        rows = s.execute(query).all()
    return [CellLine(i, dict(p), rep, st, host, _aware(fin), p95, rps,
                     f"{stage}/{category}: {message}" if message else None, art)
            for i, p, rep, st, host, fin, p95, rps, stage, category, message, art in rows]


def cell_host(store: Database, name: str, cell_id: str) -> tuple[str | None, str | None] | None:
    """(host, stored artefacts folder) of one cell of the sweep; None when the sweep has no such cell."""
    with store.session() as s:
        row = s.execute(select(CellRow.host, CellRow.artefacts).join(SweepRow, SweepRow.id == CellRow.sweep_id)
                        .where(SweepRow.name == name, CellRow.id == cell_id)).one_or_none()
    return None if row is None else (row.host, row.artefacts)


def _aware(when: datetime | None) -> datetime | None:
    return None if when is None or when.tzinfo else when.replace(tzinfo=UTC)


def _stamp(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
