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
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from farm.cells import StoredCell, stored_cell
from farm.life import CellStatus, eta_s
from farm.status import LOAD_COLUMNS, Status, SweepInfo, by_host, failed_cell, flagged_cell, running_cell

MIGRATIONS = Path(__file__).parent / "store" / "migrations" / "versions"
_SQLITE_URL = re.compile(r"^sqlite(\+pysqlite)?:///(?P<path>[^?]+)$")
_REVISION = re.compile(r"^(\d{4})_\w+\.py$")


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


def sweeps(conn: sqlite3.Connection) -> list[SweepInfo]:
    """Every sweep, newest first, with its cells counted by status (as `Store.sweeps`)."""
    counts: dict[int, dict[str, int]] = {}
    for sweep_id, state, n in conn.execute("SELECT sweep_id, status, COUNT(*) FROM cells "
                                           "GROUP BY sweep_id, status"):
        counts.setdefault(sweep_id, {})[str(state)] = int(n)
    rows = conn.execute("SELECT id, name, stack, status, created_at FROM sweeps ORDER BY created_at DESC")
    return [SweepInfo(i, name, stack, state, _when(created), counts.get(i, {}))
            for i, name, stack, state, created in rows]


def status(conn: sqlite3.Connection, name: str) -> Status | None:
    """A sweep's progress, as `farm.status.status` reads it, with its spec and flagged cells; None if there is no
    sweep of that name."""
    row = conn.execute("SELECT id, status, spec FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    sweep_id, sweep_status, spec = row
    hosts = list(conn.execute("SELECT host, status, COUNT(*) FROM cells WHERE sweep_id = ? GROUP BY host, status",
                              (sweep_id,)))
    counts: dict[str, int] = {}
    for _, state, n in hosts:
        counts[state] = counts.get(state, 0) + int(n)
    running = [running_cell(h, json.loads(p), r, _when(t) if t else None)
               for h, p, r, t in conn.execute("SELECT host, params, repetition, started_at FROM cells "
                                              "WHERE sweep_id = ? AND status = ?", (sweep_id, CellStatus.RUNNING))]
    failed = [failed_cell(i, json.loads(p), st, c, m)
              for i, p, st, c, m in conn.execute(
                  "SELECT id, params, error_stage, error_category, error_message FROM cells "
                  "WHERE sweep_id = ? AND status = ? ORDER BY position LIMIT 20", (sweep_id, CellStatus.FAILED))]
    first = conn.execute("SELECT MIN(started_at) FROM cells WHERE sweep_id = ? AND status = ?",
                         (sweep_id, CellStatus.DONE)).fetchone()[0]
    flagged = [flagged_cell(i, json.loads(p), load)
               for i, p, *load in conn.execute(
                   f"SELECT id, params, {', '.join(LOAD_COLUMNS)} FROM cells WHERE sweep_id = ? AND status = ? "
                   "AND (load_stalled = 1 OR load_mismatch = 1) ORDER BY position LIMIT 20",
                   (sweep_id, CellStatus.DONE))]
    return Status(name, sweep_status, counts, by_host(hosts), running, failed,
                  eta_s(counts, _when(first) if first else None), json.loads(spec), flagged)


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

    def cells(self, name: str) -> list[StoredCell]:
        """Every cell of a sweep with its measurements, in plan order."""
        sweep = self.sweep(name)
        cells = self._rows("cells", "sweep_id = ? ORDER BY position", (sweep.id,))
        by_cell: dict[str, list[SimpleNamespace]] = {c.id: [] for c in cells}
        for m in self._rows("measurements", "cell_id IN (SELECT id FROM cells WHERE sweep_id = ?) ORDER BY id",
                            (sweep.id,)):
            by_cell[m.cell_id].append(m)
        return [stored_cell(c, by_cell[c.id]) for c in cells]

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
