"""The repository over the results store: every read and write the farm makes, each in one transaction.

`Store` is the one entry point; its sweep-wide operations live in `farm.store.sweeps`, its engine, migrations and
sessions in `farm.store.database`; this module adds a group's and a cell's reads and writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import selectinload

from farm.cells import StoredCell, stored_cell
from farm.errors import NotFoundError
from farm.life import FINISHED, UNFINISHED, CellStatus
from farm.load.omission import LoadCheck
from farm.load.stats import LoadResult
from farm.store.database import HEAD, MIGRATIONS, transient_retry
from farm.store.models import CellRow, GroupRow, MeasurementRow, SweepRow, utcnow
from farm.store.sweeps import SweepInfo, SweepStore, measurement_rows

if TYPE_CHECKING:
    from farm.load.agreement import RequestAgreement
    from farm.stacks.driver import StackMetrics

__all__ = ["CELL_EXTRAS", "FINISHED", "HEAD", "MIGRATIONS", "UNFINISHED", "Holder", "Store", "SweepInfo",
           "transient_retry"]
log = logging.getLogger("loadfarm.store")

# Cell fields a result may carry beside its measurements (record_result's keyword arguments; migration 0004).
CELL_EXTRAS = (*LoadCheck.columns(), "warnings", "cost", "cost_breakdown", "cpu_ms_per_request", "probe")


@dataclass(frozen=True)
class Holder:
    """Who may write a group's cells: the worker holding the group's lease, in one attempt.

    A worker cut off from the store writes late (its writes are retried until the store answers), by which time
    the reaper may have handed the group back or another attempt taken it over: a write given a holder then
    changes nothing, so that it never marks cells another attempt holds cancelled, failed or done.
    """

    worker: str
    attempt: int


def held_by(holder: Holder | None) -> list[ColumnElement[bool]]:
    """The condition on a cell that its group is still held by ``holder`` (none without a holder)."""
    if holder is None:
        return []
    return [CellRow.group_id.in_(select(GroupRow.id).where(GroupRow.host == holder.worker,
                                                           GroupRow.attempts == holder.attempt))]


class Store(SweepStore):
    """Sweeps, groups, cells and measurements in a SQL database (SQLite by default, PostgreSQL in a lab)."""

    # ---------------------------------------------------------------------------------- groups
    def unfinished_groups(self, sweep_id: int) -> list[str]:
        """Ids of groups that still have cells to run, in plan order."""
        with self.session() as s:
            rows = s.execute(select(GroupRow.id).join(CellRow, CellRow.group_id == GroupRow.id)
                             .where(GroupRow.sweep_id == sweep_id, CellRow.status.in_(UNFINISHED))
                             .group_by(GroupRow.id, GroupRow.position).order_by(GroupRow.position)).scalars()
            return list(rows)

    @transient_retry
    def group_work(self, group_id: str) -> tuple[str, dict[str, Any], list[StoredCell]]:
        """A group's sweep name, stack configuration and unfinished cells in run order."""
        with self.session() as s:
            group = s.get(GroupRow, group_id)
            if group is None:
                raise NotFoundError(f"no cell group '{group_id}'")
            name = s.scalar(select(SweepRow.name).where(SweepRow.id == group.sweep_id)) or ""
            cells = s.scalars(select(CellRow).where(CellRow.group_id == group_id,
                                                    CellRow.status.in_(UNFINISHED))
                              .order_by(CellRow.position)).all()
            return name, dict(group.config), [stored_cell(c) for c in cells]

    # ----------------------------------------------------------------------------------- cells
    @transient_retry
    def mark_running(self, cell_id: str, host: dict[str, Any], holder: Holder | None = None) -> None:
        """A cell starts on a host; earlier errors are cleared."""
        now = utcnow()
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.id == cell_id, *held_by(holder)).values(
                status=CellStatus.RUNNING, host=host["name"], sut_host=(host.get("sut") or {}).get("name"),
                host_info=host, started_at=now, finished_at=None,
                error_stage=None, error_category=None, error_message=None, stage_times={"started": now.isoformat()}))

    @transient_retry
    def stage(self, cell_id: str, stage: str, holder: Holder | None = None) -> None:
        """Timestamp a stage of a cell (reset, warmup, measure, collect …)."""
        with self.session() as s:
            row = s.scalar(select(CellRow).where(CellRow.id == cell_id, *held_by(holder)))
            if row is not None:
                row.stage_times = {**(row.stage_times or {}), stage: utcnow().isoformat()}

    @transient_retry
    def record_result(self, cell_id: str, result: LoadResult, metrics: StackMetrics,
                      agreement: RequestAgreement | None = None, *, offered_rps: float | None = None,
                      rate_saturated: bool | None = None, cpu_sets: dict[str, Any] | None = None,
                      host_cpu: dict[str, Any] | None = None, host_saturated: bool | None = None,
                      holder: Holder | None = None, **extra: Any) -> bool:
        """Store a cell's measurements and mark it done, replacing any earlier result (idempotent).

        ``agreement``: Locust's and the stack's request counts over the window, when the stack counts requests.
        ``offered_rps``: open-loop load's offered rate (the achieved one is the window's), ``rate_saturated``
        whether the cell fell short of it. ``cpu_sets``, ``host_cpu``, ``host_saturated``: generator and stack on
        one host (`farm.cpusets`). ``extra``: any of `CELL_EXTRAS` (unfinished requests, stalled users, warnings,
        cost …); a name outside it is a programming error. False (nothing stored) when ``holder`` no longer holds
        the cell's group.
        """
        unknown = set(extra) - set(CELL_EXTRAS)
        if unknown:
            raise TypeError(f"record_result: unknown cell fields {sorted(unknown)}")
        with self.session() as s:
            row = s.get(CellRow, cell_id)
            if row is None:
                raise NotFoundError(f"no cell '{cell_id}'")
            held = s.scalar(select(CellRow.id).where(CellRow.id == cell_id, *held_by(holder)))
            if holder is not None and held is None:
                log.warning("result of cell %s not stored: its group is no longer held by %s (attempt %d)", cell_id,
                            holder.worker, holder.attempt)
                return False
            s.execute(delete(MeasurementRow).where(MeasurementRow.cell_id == cell_id))
            s.add_all(measurement_rows(cell_id, (*result.endpoints, result.total)))
            now = utcnow()
            row.status = CellStatus.DONE
            row.finished_at = now
            row.stage_times = {**(row.stage_times or {}), "done": now.isoformat()}
            row.measured_s, row.warmup_s = result.measured_s, result.warmup_s
            row.generator_cpu_pct, row.generator_saturated = result.generator_cpu_pct, result.generator_saturated
            row.cache_hits, row.cache_misses = metrics.cache_hits, metrics.cache_misses
            row.stack_metrics = {"instances": metrics.raw,
                                 **({"sut": metrics.resources} if metrics.resources else {}),
                                 **({"requests": agreement.as_json()} if agreement is not None else {})}
            row.artefacts = result.artefacts
            row.offered_rps, row.rate_saturated = offered_rps, rate_saturated
            row.achieved_rps = result.completed_rps if offered_rps is not None else None  # unfinished: not achieved
            row.cpu_sets, row.host_cpu, row.host_saturated = cpu_sets, host_cpu, host_saturated
            for name in CELL_EXTRAS:
                if name != "probe" or name in extra:  # a search's probe is set when planned, not measured
                    setattr(row, name, extra.get(name))
        return True

    @transient_retry
    def record_failure(self, cell_ids: list[str], stage: str, category: str, message: str,
                       status: str = CellStatus.FAILED, holder: Holder | None = None) -> None:
        """Mark cells failed (or cancelled) with the stage and category of the error; with a ``holder``, only while
        it still holds their group."""
        if not cell_ids:
            return
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.id.in_(cell_ids), CellRow.status.not_in(FINISHED),
                                            *held_by(holder)).values(
                status=status, error_stage=stage, error_category=category, error_message=message[:2000],
                finished_at=utcnow()))

    @transient_retry
    def requeue_cancelled(self, group_id: str, holder: Holder | None = None) -> None:
        """Hand a group's cells cancelled by a stopping worker (not by the user) back as pending (with a
        ``holder``, only while it still holds the group)."""
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.group_id == group_id, CellRow.status == CellStatus.CANCELLED,
                                            *held_by(holder))
                      .values(status=CellStatus.PENDING, error_stage="queued", error_message="its worker was stopped"))

    def cells(self, name: str) -> list[StoredCell]:
        """Every cell of a sweep with its measurements, in plan order."""
        sweep = self.sweep(name)
        with self.session() as s:
            rows = s.scalars(select(CellRow).where(CellRow.sweep_id == sweep.id)
                             .options(selectinload(CellRow.measurements)).order_by(CellRow.position))
            return [stored_cell(c, c.measurements) for c in rows]
