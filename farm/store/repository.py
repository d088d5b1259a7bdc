"""The repository over the results store: every read and write the farm makes, each in one transaction."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from farm.errors import NotFoundError, StoreError, SweepConflictError
from farm.load.stats import EndpointStats, LoadResult
from farm.store.models import CellRow, GroupRow, MeasurementRow, SweepRow, utcnow

if TYPE_CHECKING:  # types only: a reader of the store (`farm report`) need not load the sweep model (pydantic)
    from farm.importer import ImportedCell
    from farm.load.agreement import RequestAgreement
    from farm.plan import Cell, Plan
    from farm.spec import LoadedSweep
    from farm.stacks.driver import StackMetrics

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0004"  # the newest migration's revision; a unit test checks it against Alembic's scripts
FINISHED = ("done", "skipped")
UNFINISHED = ("pending", "running", "failed", "cancelled")
# Cell fields a result may carry beside its measurements (record_result's keyword arguments; migration 0004).
CELL_EXTRAS = ("unfinished_requests", "users_active", "users_stalled", "late_starts", "concurrency_ratio",
               "load_stalled", "load_mismatch", "warnings", "cost", "cost_breakdown", "cpu_ms_per_request", "probe")


@dataclass(frozen=True)
class SweepInfo:
    """A sweep and how far it is."""

    id: int
    name: str
    stack: str
    status: str
    created_at: datetime
    counts: dict[str, int]
    new: bool = False

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())


def transient_retry(method: Callable[..., T]) -> Callable[..., T]:
    """Retry a store write while the database is unreachable (up to the store's ``retry_s``), then give up."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        store = self if isinstance(self, Store) else self.store
        deadline = time.monotonic() + store.retry_s
        delay = 0.5
        while True:
            try:
                return method(self, *args, **kwargs)
            except StoreError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                store.engine.dispose()  # drop connections to the old server

    return wrapper


class Store:
    """Sweeps, groups, cells and measurements in a SQL database (SQLite by default, PostgreSQL in a lab)."""

    def __init__(self, url: str, retry_s: float = 0.0) -> None:
        self.url = url
        self.retry_s = retry_s
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ValueError, ImportError) as exc:
            raise StoreError(f"cannot use database URL: {exc}", hint="check FARM_DATABASE_URL") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (safe when several processes start at once)."""
        if self._at_head():
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        failure: SQLAlchemyError | None = None
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":  # one migrator at a time across the lab
                        conn.execute(text("SELECT pg_advisory_xact_lock(4242)"))
                    config.attributes["connection"] = conn
                    command.upgrade(config, "head")
                return
            except SQLAlchemyError as exc:  # e.g. another process created the same table first
                failure = exc
                time.sleep(0.2 * (attempt + 1))
                if self._at_head():
                    return
        raise StoreError(f"cannot prepare the results database: {_short(failure or Exception())}",
                         hint="check FARM_DATABASE_URL and that the server is up")

    def _at_head(self) -> bool:
        """Whether the schema is already at HEAD (a cheap query instead of loading Alembic)."""
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        except SQLAlchemyError:
            return False

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise StoreError(f"results database error: {_short(exc)}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    # ---------------------------------------------------------------------------------- sweeps
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
                           spec=spec.model_dump(mode="json"), fingerprint=fingerprint, status="pending")
            s.add(row)
            s.flush()
            # Core bulk inserts: a 10,000-cell sweep is stored in a fraction of a second.
            s.execute(insert(GroupRow), [{"id": g.id, "sweep_id": row.id, "config": g.config, "position": i,
                                          "status": "pending"} for i, g in enumerate(plan.groups)])
            s.execute(insert(CellRow), [{"id": c.id, "sweep_id": row.id, "group_id": c.group_id, "position": c.order,
                                         "params": c.params, "users": c.users, "instances": int(c.params["instances"]),
                                         "repetition": c.repetition, "status": "pending", "stage_times": {}}
                                        for c in plan.cells])
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
            s.execute(update(SweepRow).where(SweepRow.id == sweep_id).values(status=status, updated_at=utcnow()))

    @transient_retry
    def sweep_status(self, name: str) -> str:
        """The sweep's status (``cancelled`` tells running workers to stop)."""
        with self.session() as s:
            return str(s.scalar(select(SweepRow.status).where(SweepRow.name == name)) or "missing")

    @transient_retry
    def settle(self, name: str) -> str:
        """Once no cell waits or runs, record the sweep as done (or failed); returns its status."""
        sweep = self.sweep(name)
        if sweep.counts.get("pending", 0) or sweep.counts.get("running", 0) or sweep.status in (
                "cancelled", "interrupted"):
            return sweep.status
        status = "failed" if sweep.counts.get("failed") else "done"
        self.set_sweep_status(sweep.id, status)
        return status

    def cancel(self, name: str) -> list[str]:
        """Mark a sweep cancelled and its waiting cells too; returns the ids of groups that were waiting."""
        sweep = self.sweep(name)
        with self.session() as s:
            s.execute(update(SweepRow).where(SweepRow.id == sweep.id).values(status="cancelled", updated_at=utcnow()))
            waiting = list(s.scalars(select(GroupRow.id).where(GroupRow.sweep_id == sweep.id,
                                                               GroupRow.status.in_(("pending", "queued")))))
            s.execute(update(GroupRow).where(GroupRow.id.in_(waiting)).values(status="cancelled"))
            s.execute(update(CellRow).where(CellRow.sweep_id == sweep.id, CellRow.status == "pending").values(
                status="cancelled", error_stage="queued", error_category="cancel",
                error_message="cancelled before it ran"))
            return waiting

    def reopen(self, name: str) -> list[str]:
        """Make a sweep's unfinished cells pending again; returns the groups to dispatch (not running ones)."""
        sweep = self.sweep(name)
        with self.session() as s:
            s.execute(update(SweepRow).where(SweepRow.id == sweep.id).values(status="running", updated_at=utcnow()))
            s.execute(update(CellRow).where(CellRow.sweep_id == sweep.id,
                                            CellRow.status.in_(("failed", "cancelled"))).values(status="pending"))
            groups = list(s.scalars(
                select(GroupRow.id).join(CellRow, CellRow.group_id == GroupRow.id)
                .where(GroupRow.sweep_id == sweep.id, GroupRow.status != "running",
                       CellRow.status.in_(UNFINISHED)).group_by(GroupRow.id, GroupRow.position)
                .order_by(GroupRow.position)))
            s.execute(update(GroupRow).where(GroupRow.id.in_(groups)).values(status="pending", attempts=0,
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
                s.execute(insert(CellRow), [{"id": c.id, "sweep_id": sweep.id, "group_id": c.group_id,
                                             "position": last + 1 + i, "params": c.params, "users": c.users,
                                             "instances": int(c.params["instances"]), "repetition": c.repetition,
                                             "status": "pending", "stage_times": {}} for i, c in enumerate(new)])
            return len(new)

    def group_configs(self, sweep_id: int) -> dict[str, dict[str, Any]]:
        """Stack configuration of every group of a sweep, by group id, in run order (dispatch keeps it)."""
        with self.session() as s:
            rows = s.execute(select(GroupRow.id, GroupRow.config).where(GroupRow.sweep_id == sweep_id)
                             .order_by(GroupRow.position)).all()
            return {str(gid): dict(config) for gid, config in rows}

    def progress(self, name: str) -> dict[str, Any]:
        """Everything `farm status` shows: counts by status and host, running cells, failures, timings."""
        sweep = self.sweep(name)
        with self.session() as s:
            by_host = s.execute(select(CellRow.host, CellRow.status, func.count()).where(
                CellRow.sweep_id == sweep.id).group_by(CellRow.host, CellRow.status)).all()
            running = s.execute(select(CellRow.host, CellRow.params, CellRow.repetition, CellRow.started_at).where(
                CellRow.sweep_id == sweep.id, CellRow.status == "running")).all()
            failed = s.execute(select(CellRow.id, CellRow.params, CellRow.error_stage, CellRow.error_category,
                                      CellRow.error_message).where(CellRow.sweep_id == sweep.id,
                                                                   CellRow.status == "failed")
                                 .order_by(CellRow.position).limit(20)).all()
            spans = s.execute(select(func.min(CellRow.started_at), func.max(CellRow.finished_at),
                                     func.count(func.distinct(CellRow.host))).where(
                CellRow.sweep_id == sweep.id, CellRow.status == "done")).one()
        return {"sweep": sweep, "by_host": [(h, st, int(n)) for h, st, n in by_host],
                "running": [(h, dict(p), r, t) for h, p, r, t in running],
                "failed": [(i, dict(p), st, cat, msg) for i, p, st, cat, msg in failed],
                "first_start": spans[0], "last_finish": spans[1], "hosts_done": int(spans[2] or 0)}

    # ---------------------------------------------------------------------------------- groups
    def unfinished_groups(self, sweep_id: int) -> list[str]:
        """Ids of groups that still have cells to run, in plan order."""
        with self.session() as s:
            rows = s.execute(select(GroupRow.id).join(CellRow, CellRow.group_id == GroupRow.id)
                             .where(GroupRow.sweep_id == sweep_id, CellRow.status.in_(UNFINISHED))
                             .group_by(GroupRow.id, GroupRow.position).order_by(GroupRow.position)).scalars()
            return list(rows)

    @transient_retry
    def group_work(self, group_id: str) -> tuple[str, dict[str, Any], list[CellRow]]:
        """A group's sweep name, stack configuration and unfinished cells in run order."""
        with self.session() as s:
            group = s.get(GroupRow, group_id)
            if group is None:
                raise NotFoundError(f"no cell group '{group_id}'")
            name = s.scalar(select(SweepRow.name).where(SweepRow.id == group.sweep_id)) or ""
            cells = s.scalars(select(CellRow).where(CellRow.group_id == group_id,
                                                    CellRow.status.in_(UNFINISHED))
                              .order_by(CellRow.position)).all()
            return name, dict(group.config), list(cells)

    # ----------------------------------------------------------------------------------- cells
    @transient_retry
    def mark_running(self, cell_id: str, host: dict[str, Any]) -> None:
        """A cell starts on a host; earlier errors are cleared."""
        now = utcnow()
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.id == cell_id).values(
                status="running", host=host["name"], sut_host=(host.get("sut") or {}).get("name"), host_info=host,
                started_at=now, finished_at=None,
                error_stage=None, error_category=None, error_message=None, stage_times={"started": now.isoformat()}))

    @transient_retry
    def stage(self, cell_id: str, stage: str) -> None:
        """Timestamp a stage of a cell (reset, warmup, measure, collect …)."""
        with self.session() as s:
            row = s.get(CellRow, cell_id)
            if row is not None:
                row.stage_times = {**(row.stage_times or {}), stage: utcnow().isoformat()}

    @transient_retry
    def record_result(self, cell_id: str, result: LoadResult, metrics: StackMetrics,
                      agreement: RequestAgreement | None = None, *, offered_rps: float | None = None,
                      rate_saturated: bool | None = None, cpu_sets: dict[str, Any] | None = None,
                      host_cpu: dict[str, Any] | None = None, host_saturated: bool | None = None,
                      **extra: Any) -> None:
        """Store a cell's measurements and mark it done, replacing any earlier result (idempotent).

        ``agreement``: Locust's and the stack's request counts over the window, when the stack counts requests.
        ``offered_rps``: open-loop load's offered rate (the achieved one is the window's), ``rate_saturated``
        whether the cell fell short of it. ``cpu_sets``, ``host_cpu``, ``host_saturated``: generator and stack on
        one host (`farm.cpusets`). ``extra``: any of `CELL_EXTRAS` (unfinished requests, stalled users, warnings,
        cost …); a name outside it is a programming error.
        """
        unknown = set(extra) - set(CELL_EXTRAS)
        if unknown:
            raise TypeError(f"record_result: unknown cell fields {sorted(unknown)}")
        with self.session() as s:
            row = s.get(CellRow, cell_id)
            if row is None:
                raise NotFoundError(f"no cell '{cell_id}'")
            s.execute(delete(MeasurementRow).where(MeasurementRow.cell_id == cell_id))
            s.add_all(_measurements(cell_id, (*result.endpoints, result.total)))
            now = utcnow()
            row.status = "done"
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

    @transient_retry
    def record_failure(self, cell_ids: list[str], stage: str, category: str, message: str,
                       status: str = "failed") -> None:
        """Mark cells failed (or cancelled) with the stage and category of the error."""
        if not cell_ids:
            return
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.id.in_(cell_ids), CellRow.status.not_in(FINISHED)).values(
                status=status, error_stage=stage, error_category=category, error_message=message[:2000],
                finished_at=utcnow()))

    @transient_retry
    def requeue_cancelled(self, group_id: str) -> None:
        """Hand a group's cells cancelled by a stopping worker (not by the user) back as pending."""
        with self.session() as s:
            s.execute(update(CellRow).where(CellRow.group_id == group_id, CellRow.status == "cancelled")
                      .values(status="pending", error_stage="queued", error_message="its worker was stopped"))

    def import_sweep(self, name: str, spec: dict[str, Any], text: str, cells: list[ImportedCell],
                     host: str) -> SweepInfo:
        """Store imported runs as a done sweep (one group per configuration); refuses an existing name."""
        with self.session() as s:
            if s.scalar(select(SweepRow.id).where(SweepRow.name == name)) is not None:
                raise SweepConflictError(f"a sweep named '{name}' already exists",
                                         hint="choose another --sweep name")
            row = SweepRow(name=name, stack=str(spec.get("stack", "imported")), spec_text=text, spec=spec,
                           fingerprint=_digest(name, spec), status="done")
            s.add(row)
            s.flush()
            groups: dict[str, str] = {}
            for position, cell in enumerate(cells):
                config = {k: v for k, v in cell.params.items() if k != "users"}
                gid = groups.setdefault(_digest(name, config), _digest(name, config))
                if s.get(GroupRow, gid) is None:
                    s.add(GroupRow(id=gid, sweep_id=row.id, config=config, position=len(groups), status="done"))
                    s.flush()
                cid = _digest(name, cell.params, 1)
                s.add(CellRow(id=cid, sweep_id=row.id, group_id=gid, position=position, params=cell.params,
                              users=int(cell.params["users"]), instances=int(cell.params["instances"]),
                              repetition=1, status="done", host=host, stage_times={"imported": cell.source},
                              measured_s=cell.measured_s, warmup_s=0.0, artefacts=cell.source))
                s.add_all(_measurements(cid, (*cell.endpoints, cell.total)))
            s.flush()
            return self._info(s, row)

    def cells(self, name: str) -> list[CellRow]:
        """Every cell of a sweep with its measurements, in plan order."""
        sweep = self.sweep(name)
        with self.session() as s:
            return list(s.scalars(select(CellRow).where(CellRow.sweep_id == sweep.id)
                                  .options(selectinload(CellRow.measurements)).order_by(CellRow.position)))


def _measurements(cell_id: str, endpoints: tuple[EndpointStats, ...]) -> list[MeasurementRow]:
    return [MeasurementRow(cell_id=cell_id, method=e.method, name=e.name, requests=e.requests, failures=e.failures,
                           rps=e.rps, mean_ms=e.mean_ms, p50_ms=e.p50_ms, p90_ms=e.p90_ms, p95_ms=e.p95_ms,
                           p99_ms=e.p99_ms, max_ms=e.max_ms, histogram={str(k): v for k, v in e.histogram.items()},
                           p50_ok_ms=e.p50_ok_ms, p90_ok_ms=e.p90_ok_ms, p95_ok_ms=e.p95_ok_ms, p99_ok_ms=e.p99_ok_ms,
                           histogram_ok=None if e.histogram_ok is None else
                           {str(k): v for k, v in e.histogram_ok.items()})
            for e in endpoints]


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _source_path(source: str) -> str | None:
    path = Path(source)
    return str(path.resolve())[:1000] if path.is_file() else None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
