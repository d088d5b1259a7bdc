"""What `farm serve` reads from the store: sweeps with their ETA, a sweep's version, its cells; plain selects that
answer in milliseconds on a 10,000-cell sweep (the analysis itself is `farm.report.build`'s, run in the background
by `farm.web.answer`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, select

from farm.life import CellStatus, eta_s
from farm.load.stats import TOTAL
from farm.store.models import CellRow, MeasurementRow, SweepRow
from farm.store.repository import Store, SweepInfo


@dataclass(frozen=True)
class SweepLine:
    """One sweep of the index page: how far it is, when it should end, how many cells failed."""

    info: SweepInfo
    eta_s: float | None


@dataclass(frozen=True)
class CellLine:
    """One cell as the pages list it."""

    id: str
    params: dict[str, Any]
    repetition: int
    status: str
    host: str | None
    finished_at: datetime | None
    p95_ms: float | None
    rps: float | None
    error: str | None
    artefacts: str | None


def sweep_lines(store: Store) -> list[SweepLine]:
    """Every sweep, newest first, with its counts and ETA."""
    with store.session() as s:
        firsts = dict(s.execute(select(CellRow.sweep_id, func.min(CellRow.started_at))
                                .where(CellRow.status == CellStatus.DONE).group_by(CellRow.sweep_id)).all())
    return [SweepLine(info, eta_s(info.counts, firsts.get(info.id))) for info in store.sweeps()]


def version(store: Store, name: str) -> tuple[Any, ...]:
    """What changes whenever a cell of the sweep changes state or lands: the key of its cached answer."""
    with store.session() as s:
        row = s.execute(select(SweepRow.id, SweepRow.status).where(SweepRow.name == name)).one_or_none()
        if row is None:
            return ()
        counts = s.execute(select(CellRow.status, func.count(), func.max(CellRow.finished_at))
                           .where(CellRow.sweep_id == row.id).group_by(CellRow.status)
                           .order_by(CellRow.status)).all()
    return (row.status, *((status, int(n), _stamp(last)) for status, n, last in counts))


def cells(store: Store, name: str, *, limit: int | None = None) -> list[CellLine]:
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


def cell_host(store: Store, name: str, cell_id: str) -> tuple[str | None, str | None] | None:
    """(host, stored artefacts folder) of one cell of the sweep; None when the sweep has no such cell."""
    with store.session() as s:
        row = s.execute(select(CellRow.host, CellRow.artefacts).join(SweepRow, SweepRow.id == CellRow.sweep_id)
                        .where(SweepRow.name == name, CellRow.id == cell_id)).one_or_none()
    return None if row is None else (row.host, row.artefacts)


def locust_report(artefacts_dir: Path, name: str, cell_id: str) -> Path | None:
    """The cell's Locust HTML report under this machine's artefacts folder, where the farm writes it; never a path
    taken from the store (a cell that ran elsewhere has its report on its own host)."""
    root = artefacts_dir.resolve()
    path = (root / name / cell_id / "locust.html").resolve()  # symlinks resolved: it must stay inside the root
    return path if path.is_relative_to(root) and path.is_file() else None


def _aware(when: datetime | None) -> datetime | None:
    return None if when is None or when.tzinfo else when.replace(tzinfo=UTC)


def _stamp(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
