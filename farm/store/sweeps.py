"""The sweeps in the store: create, resume, import, cancel and reopen them, and how far each is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from farm.errors import NotFoundError, SweepConflictError
from farm.life import STOPPED, UNFINISHED, WAITING, CellStatus, GroupStatus, SweepStatus, eta_s, settled_status
from farm.load.stats import HISTOGRAMS, EndpointStats
from farm.status import Status, SweepInfo, by_host, failed_cell, running_cell
from farm.store.database import Database, transient_retry
from farm.store.models import CellRow, GroupRow, MeasurementRow, SweepRow, utcnow

if TYPE_CHECKING:  # types only: a reader of the store (`farm report`) need not load the sweep model (pydantic)
    from farm.importer import ImportedCell
    from farm.plan import Cell, Plan
    from farm.spec import LoadedSweep


class SweepStore(Database):
    """Sweep-wide reads and writes of the store."""

    def create_or_resume(self, loaded: LoadedSweep, plan: Plan) -> SweepInfo:
        """Store a new sweep with all its cells pending, or return the existing one if its spec is the same."""
        spec = loaded.spec
        fingerprint = spec.fingerprint()
        with self.session() as s:
            row = s.scalar(select(SweepRow).where(SweepRow.name == spec.name))
            if row is not None:
                if row.fingerprint != fingerprint:
                    raise SweepConflictError(
                        f"a sweep named '{spec.name}' already exists with a different spec",
                        hint="rename the sweep, or run it against another FARM_DATABASE_URL")
                return self._info(s, row)
            row = SweepRow(name=spec.name, stack=spec.stack, spec_text=loaded.text, source=_source_path(loaded.source),
                           spec=spec.model_dump(mode="json"), fingerprint=fingerprint, status=SweepStatus.PENDING)
            s.add(row)
            s.flush()
            # Core bulk inserts: a 10,000-cell sweep is stored in a fraction of a second.
            s.execute(insert(GroupRow), [{"id": g.id, "sweep_id": row.id, "config": g.config, "position": i,
                                          "status": GroupStatus.PENDING} for i, g in enumerate(plan.groups)])
            s.execute(insert(CellRow), [pending_row(c, row.id, c.order) for c in plan.cells])
            info = self._info(s, row)
        return SweepInfo(**{**info.__dict__, "new": True})

    def _info(self, s: Session, row: SweepRow) -> SweepInfo:
        rows = s.execute(select(CellRow.status, func.count()).where(CellRow.sweep_id == row.id)
                         .group_by(CellRow.status)).all()
        counts = {str(status): int(n) for status, n in rows}
        return SweepInfo(row.id, row.name, row.stack, row.status, row.created_at, counts)

    def sweep(self, name: str) -> SweepInfo:
        """The sweep of this name; NotFoundError if there is none."""
        with self.session() as s:
            row = s.scalar(select(SweepRow).where(SweepRow.name == name))
            if row is None:
                known = s.scalars(select(SweepRow.name).order_by(SweepRow.created_at.desc()).limit(5)).all()
                raise NotFoundError(f"no sweep named '{name}'",
                                    hint=f"known: {', '.join(known)}" if known else "run `farm run SWEEP.yaml`")
            return self._info(s, row)

    def sweep_spec(self, name: str) -> tuple[dict[str, Any], str]:
        """The stored spec of a sweep, as a model dump and as the submitted text."""
        with self.session() as s:
            row = s.scalar(select(SweepRow).where(SweepRow.name == name))
            if row is None:
                raise NotFoundError(f"no sweep named '{name}'")
            return dict(row.spec), row.spec_text

    def sweep_source(self, name: str) -> Path | None:
        """The sweep file as submitted (absolute), against which its relative stack and locustfile paths resolve."""
        with self.session() as s:
            source = s.scalar(select(SweepRow.source).where(SweepRow.name == name))
            return Path(source) if source else None

    def sweeps(self) -> list[SweepInfo]:
        """Every sweep, newest first."""
        with self.session() as s:
            rows = s.scalars(select(SweepRow).order_by(SweepRow.created_at.desc())).all()
            return [self._info(s, r) for r in rows]

    def set_sweep_status(self, sweep_id: int, status: str) -> None:
        """Record a sweep's overall status."""
        with self.session() as s:
            _set_status(s, sweep_id, status)

    @transient_retry
    def sweep_status(self, name: str) -> str:
        """The sweep's status (``cancelled`` tells running workers to stop)."""
        with self.session() as s:
            return str(s.scalar(select(SweepRow.status).where(SweepRow.name == name)) or SweepStatus.MISSING)

    @transient_retry
    def settle(self, name: str) -> str:
        """Once no cell waits or runs, record the sweep as done (or failed); returns its status."""
        sweep = self.sweep(name)
        status = settled_status(sweep.counts)
        if status is None or sweep.status in STOPPED:
            return sweep.status
        self.set_sweep_status(sweep.id, status)
        return status

    def cancel(self, name: str) -> list[str]:
        """Mark a sweep cancelled and its waiting cells too; returns the ids of groups that were waiting."""
        sweep = self.sweep(name)
        with self.session() as s:
            _set_status(s, sweep.id, SweepStatus.CANCELLED)
            waiting = list(s.scalars(select(GroupRow.id).where(GroupRow.sweep_id == sweep.id,
                                                               GroupRow.status.in_(WAITING))))
            s.execute(update(GroupRow).where(GroupRow.id.in_(waiting)).values(status=GroupStatus.CANCELLED))
            s.execute(update(CellRow).where(CellRow.sweep_id == sweep.id, CellRow.status == CellStatus.PENDING).values(
                status=CellStatus.CANCELLED, error_stage="queued", error_category="cancel",
                error_message="cancelled before it ran"))
            return waiting

    def reopen(self, name: str) -> list[str]:
        """Make a sweep's unfinished cells pending again; returns the groups to dispatch (not running ones)."""
        sweep = self.sweep(name)
        with self.session() as s:
            _set_status(s, sweep.id, SweepStatus.RUNNING)
            s.execute(update(CellRow).where(CellRow.sweep_id == sweep.id,
                                            CellRow.status.in_((CellStatus.FAILED, CellStatus.CANCELLED)))
                      .values(status=CellStatus.PENDING))
            groups = list(s.scalars(
                select(GroupRow.id).join(CellRow, CellRow.group_id == GroupRow.id)
                .where(GroupRow.sweep_id == sweep.id, GroupRow.status != GroupStatus.RUNNING,
                       CellRow.status.in_(UNFINISHED)).group_by(GroupRow.id, GroupRow.position)
                .order_by(GroupRow.position)))
            s.execute(update(GroupRow).where(GroupRow.id.in_(groups)).values(status=GroupStatus.PENDING, attempts=0,
                                                                               last_error=None))
            return groups

    def add_cells(self, name: str, cells: list[Cell]) -> int:
        """Add cells to an existing sweep's groups (skipping ids already stored); returns how many were new."""
        sweep = self.sweep(name)
        with self.session() as s:
            known = set(s.scalars(select(CellRow.id).where(CellRow.sweep_id == sweep.id)))
            last = s.scalar(select(func.max(CellRow.position)).where(CellRow.sweep_id == sweep.id)) or 0
            new = [c for c in cells if c.id not in known]
            if new:
                s.execute(insert(CellRow), [pending_row(c, sweep.id, last + 1 + i) for i, c in enumerate(new)])
            return len(new)

    def group_configs(self, sweep_id: int) -> dict[str, dict[str, Any]]:
        """Stack configuration of every group of a sweep, by group id, in run order (dispatch keeps it)."""
        with self.session() as s:
            rows = s.execute(select(GroupRow.id, GroupRow.config).where(GroupRow.sweep_id == sweep_id)
                             .order_by(GroupRow.position)).all()
            return {str(gid): dict(config) for gid, config in rows}

    def progress(self, name: str) -> Status:
        """Everything `farm status` shows: counts by status and host, running cells, failures, an ETA."""
        sweep = self.sweep(name)
        with self.session() as s:
            hosts = s.execute(select(CellRow.host, CellRow.status, func.count()).where(
                CellRow.sweep_id == sweep.id).group_by(CellRow.host, CellRow.status)).all()
            running = s.execute(select(CellRow.host, CellRow.params, CellRow.repetition, CellRow.started_at).where(
                CellRow.sweep_id == sweep.id, CellRow.status == CellStatus.RUNNING)).all()
            failed = s.execute(select(CellRow.id, CellRow.params, CellRow.error_stage, CellRow.error_category,
                                      CellRow.error_message).where(CellRow.sweep_id == sweep.id,
                                                                   CellRow.status == CellStatus.FAILED)
                                 .order_by(CellRow.position).limit(20)).all()
            first = s.scalar(select(func.min(CellRow.started_at)).where(CellRow.sweep_id == sweep.id,
                                                                        CellRow.status == CellStatus.DONE))
        return Status(sweep.name, sweep.status, dict(sweep.counts), by_host((h, st, int(n)) for h, st, n in hosts),
                      [running_cell(h, dict(p), r, t) for h, p, r, t in running],
                      [failed_cell(i, dict(p), st, cat, msg) for i, p, st, cat, msg in failed],
                      eta_s(sweep.counts, first))

    def import_sweep(self, name: str, spec: dict[str, Any], text: str, cells: list[ImportedCell],
                     host: str) -> SweepInfo:
        """Store imported runs as a done sweep (one group per configuration); refuses an existing name."""
        with self.session() as s:
            if s.scalar(select(SweepRow.id).where(SweepRow.name == name)) is not None:
                raise SweepConflictError(f"a sweep named '{name}' already exists",
                                         hint="choose another --sweep name")
            row = SweepRow(name=name, stack=str(spec.get("stack", "imported")), spec_text=text, spec=spec,
                           fingerprint=_digest(name, spec), status=SweepStatus.DONE)
            s.add(row)
            s.flush()
            groups: dict[str, str] = {}
            for position, cell in enumerate(cells):
                config = {k: v for k, v in cell.params.items() if k != "users"}
                gid = groups.setdefault(_digest(name, config), _digest(name, config))
                if s.get(GroupRow, gid) is None:
                    s.add(GroupRow(id=gid, sweep_id=row.id, config=config, position=len(groups),
                                   status=GroupStatus.DONE))
                    s.flush()
                cid = _digest(name, cell.params, 1)
                s.add(CellRow(id=cid, sweep_id=row.id, group_id=gid, position=position, params=cell.params,
                              users=int(cell.params["users"]), instances=int(cell.params["instances"]),
                              repetition=1, status=CellStatus.DONE, host=host, stage_times={"imported": cell.source},
                              measured_s=cell.measured_s, warmup_s=0.0, artefacts=cell.source))
                s.add_all(measurement_rows(cid, (*cell.endpoints, cell.total)))
            s.flush()
            return self._info(s, row)


def measurement_rows(cell_id: str, endpoints: tuple[EndpointStats, ...]) -> list[MeasurementRow]:
    """The measurement rows of a cell, one per endpoint and one for the total (a row's columns are
    `EndpointStats`' fields; JSON keys its histograms by text)."""
    return [MeasurementRow(cell_id=cell_id, **{f.name: _stored(getattr(e, f.name), f.name in HISTOGRAMS)
                                               for f in fields(e)})
            for e in endpoints]


def _stored(value: Any, histogram: bool) -> Any:
    return {str(k): v for k, v in value.items()} if histogram and value is not None else value


def pending_row(cell: Cell, sweep_id: int, position: int, probe: dict[str, Any] | None = None) -> dict[str, Any]:
    """A planned cell's row (for a bulk insert), pending; ``probe``: why a capacity search measures it."""
    return {"id": cell.id, "sweep_id": sweep_id, "group_id": cell.group_id, "position": position,
            "params": cell.params, "users": cell.users, "instances": cell.instances,
            "repetition": cell.repetition, "status": CellStatus.PENDING, "stage_times": {}, "probe": probe}


def _set_status(s: Session, sweep_id: int, status: str) -> None:
    s.execute(update(SweepRow).where(SweepRow.id == sweep_id).values(status=status, updated_at=utcnow()))


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_path(source: str) -> str | None:
    path = Path(source)
    return str(path.resolve())[:1000] if path.is_file() else None
