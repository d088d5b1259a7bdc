"""Read-only facts for `farm sweeps`, `farm status NAME` and `farm report NAME --format json` from a SQLite store,
with stdlib sqlite3 only.

The CLI's fast path: no SQLAlchemy, pydantic, Celery or Typer to import, so a read answers in a few tens of
milliseconds. It gives the same facts as `Store.sweeps()` and `scheduler.control.status()`, and answers `None`
whenever it cannot answer exactly (another database, a store not yet migrated, an unknown sweep): the caller then
takes the full path, which migrates, explains and errs as usual.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

MIGRATIONS = Path(__file__).parent / "store" / "migrations" / "versions"
_SQLITE_URL = re.compile(r"^sqlite(\+pysqlite)?:///(?P<path>[^?]+)$")
_REVISION = re.compile(r"^(\d{4})_\w+\.py$")


@dataclass(frozen=True)
class SweepFacts:
    """A sweep and how far it is (the fields of `SweepInfo` that `farm sweeps` shows)."""

    id: int
    name: str
    stack: str
    status: str
    created_at: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class StatusFacts:
    """A sweep's progress, as `scheduler.control.Status` gives it, and its stored spec."""

    name: str
    sweep_status: str
    counts: dict[str, int]
    by_host: dict[str, dict[str, int]]
    running: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    eta_s: float | None
    spec: dict[str, Any]
    flagged: list[dict[str, Any]] = field(default_factory=list)  # done cells whose load stalled or mismatched

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """Whether no cell is waiting or running."""
        return self.counts.get("pending", 0) + self.counts.get("running", 0) == 0


def sqlite_path(url: str) -> Path | None:
    """The database file of a plain ``sqlite:///PATH`` URL; None for any other URL (in memory, options, servers)."""
    match = _SQLITE_URL.match(url)
    if match is None or match["path"] in ("", ":memory:"):
        return None
    return Path(match["path"])


def head_revision(versions: Path = MIGRATIONS) -> str | None:
    """The newest migration's revision, read from the migration scripts' names (``0002_….py`` → ``0002``)."""
    try:
        revisions = [m[1] for p in versions.iterdir() if (m := _REVISION.match(p.name))]
    except OSError:
        return None
    return max(revisions, default=None)


@contextmanager
def connect(url: str) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to the store at ``url`` if it is a SQLite file at the newest schema, else None."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        yield None
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        yield None
        return
    with closing(conn):
        try:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            version = None
        yield conn if version is not None and version[0] == head_revision() else None


def sweeps(conn: sqlite3.Connection) -> list[SweepFacts]:
    """Every sweep, newest first, with its cells counted by status."""
    counts: dict[int, dict[str, int]] = {}
    for sweep_id, status, n in conn.execute("SELECT sweep_id, status, COUNT(*) FROM cells "
                                            "GROUP BY sweep_id, status"):
        counts.setdefault(sweep_id, {})[str(status)] = int(n)
    rows = conn.execute("SELECT id, name, stack, status, created_at FROM sweeps ORDER BY created_at DESC")
    return [SweepFacts(i, name, stack, status, _when(created), counts.get(i, {}))
            for i, name, stack, status, created in rows]


def status(conn: sqlite3.Connection, name: str) -> StatusFacts | None:
    """A sweep's progress, computed as `scheduler.control.status` does; None if there is no sweep of that name."""
    row = conn.execute("SELECT id, status, spec FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    sweep_id, sweep_status, spec = row
    counts: dict[str, int] = {}
    by_host: dict[str, dict[str, int]] = {}
    for host, state, n in conn.execute("SELECT host, status, COUNT(*) FROM cells WHERE sweep_id = ? "
                                       "GROUP BY host, status", (sweep_id,)):
        by_host.setdefault(host or "(not yet run)", {})[state] = int(n)
        counts[state] = counts.get(state, 0) + int(n)
    running = [{"host": h, "params": json.loads(p), "repetition": r, "since": _when(t) if t else None}
               for h, p, r, t in conn.execute("SELECT host, params, repetition, started_at FROM cells "
                                              "WHERE sweep_id = ? AND status = 'running'", (sweep_id,))]
    failed = [{"id": i, "params": json.loads(p), "stage": st, "category": c, "message": m}
              for i, p, st, c, m in conn.execute(
                  "SELECT id, params, error_stage, error_category, error_message FROM cells "
                  "WHERE sweep_id = ? AND status = 'failed' ORDER BY position LIMIT 20", (sweep_id,))]
    first = conn.execute("SELECT MIN(started_at) FROM cells WHERE sweep_id = ? AND status = 'done'",
                         (sweep_id,)).fetchone()[0]
    flagged = [{"id": i, "params": json.loads(p), **dict(zip(_LOAD, load, strict=True))}
               for i, p, *load in conn.execute(
                   f"SELECT id, params, {', '.join(_LOAD)} FROM cells WHERE sweep_id = ? AND status = 'done' "
                   "AND (load_stalled = 1 OR load_mismatch = 1) ORDER BY position LIMIT 20", (sweep_id,))]
    return StatusFacts(name, sweep_status, counts, by_host, running, failed, _eta(counts, first), json.loads(spec),
                       flagged)


# What `farm status` shows of a done cell whose load did not hold (as `farm.commands.progress.LOAD_COLUMNS`).
_LOAD = ("unfinished_requests", "users_stalled", "late_starts", "concurrency_ratio", "load_stalled", "load_mismatch")


def _eta(counts: dict[str, int], first_start: str | None) -> float | None:
    done = counts.get("done", 0) + counts.get("skipped", 0) + counts.get("failed", 0)
    left = counts.get("pending", 0) + counts.get("running", 0)
    if not (done and left and first_start):
        return None
    elapsed = (datetime.now(UTC) - _when(first_start)).total_seconds()
    return elapsed / done * left


def _when(stored: str) -> datetime:
    """A stored timestamp (SQLite keeps them as ISO text, without the zone: UTC) as an aware datetime."""
    when = datetime.fromisoformat(stored)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class ReadOnlyStore:
    """What `farm report` reads of a sweep (`Store.sweep`, `sweep_spec`, `cells`), from a SQLite store with
    sqlite3 alone: rows as plain objects whose attributes are the tables' columns, typed by the schema's own
    declared column types (JSON, DATETIME, BOOLEAN), so that no column list is repeated here."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def sweep(self, name: str) -> SimpleNamespace:
        """The sweep row of this name; NotFoundError if there is none."""
        rows = self._rows("sweeps", "name = ?", (name,))
        if not rows:
            from farm.errors import NotFoundError

            raise NotFoundError(f"no sweep named '{name}'")
        return rows[0]

    def sweep_spec(self, name: str) -> tuple[dict[str, Any], str]:
        """The stored spec of a sweep, as a model dump and as the submitted text."""
        row = self.sweep(name)
        return dict(row.spec), row.spec_text

    def cells(self, name: str) -> list[SimpleNamespace]:
        """Every cell of a sweep with its measurements, in plan order."""
        sweep = self.sweep(name)
        cells = self._rows("cells", "sweep_id = ? ORDER BY position", (sweep.id,))
        by_cell: dict[str, list[SimpleNamespace]] = {c.id: [] for c in cells}
        for m in self._rows("measurements", "cell_id IN (SELECT id FROM cells WHERE sweep_id = ?) ORDER BY id",
                            (sweep.id,)):
            by_cell[m.cell_id].append(m)
        for c in cells:
            c.measurements = by_cell[c.id]
        return cells

    def _rows(self, table: str, where: str, args: tuple[Any, ...]) -> list[SimpleNamespace]:
        kinds = {str(r[1]): str(r[2]).upper() for r in self.conn.execute(f"PRAGMA table_info({table})")}
        cursor = self.conn.execute(f"SELECT * FROM {table} WHERE {where}", args)  # table, where: ours, never input
        names = [d[0] for d in cursor.description]
        return [SimpleNamespace(**{n: _typed(v, kinds.get(n, "")) for n, v in zip(names, row, strict=True)})
                for row in cursor]


def _typed(value: Any, kind: str) -> Any:
    """A stored value as the ORM gives it back, by its column's declared type."""
    if value is None:
        return None
    if kind == "JSON":
        return json.loads(value)
    if kind == "BOOLEAN":
        return bool(value)
    if kind == "DATETIME":
        return datetime.fromisoformat(value)
    return value
