"""The results database: its engine, its schema's migrations and transactions, and retries while it is away."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from farm.errors import StoreError

T = TypeVar("T")
MIGRATIONS = Path(__file__).with_name("migrations")
HEAD = "0004"  # the newest migration's revision; a unit test checks it against Alembic's scripts
# Bounded network waits on PostgreSQL (libpq's parameters), so that a process whose database went away (its host
# down, the network cut) gets an error it can retry or report instead of waiting forever: connecting; a silent
# peer while waiting for an answer (TCP keepalives: declared dead ~25 s after its last sign of life); sent data never
# acknowledged (TCP_USER_TIMEOUT, ms); and any one statement (the server's own limit, e.g. a wait for a lock that a
# stuck session holds). A setting given in FARM_DATABASE_URL's query wins.
PG_TIMEOUTS: dict[str, object] = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                                  "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 30_000,
                                  "options": "-c statement_timeout=60000"}


def transient_retry(method: Callable[..., T]) -> Callable[..., T]:
    """Retry a store write while the database is unreachable (up to the store's ``retry_s``), then give up."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        store = self if isinstance(self, Database) else self.store
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


class Database:
    """A SQL database (SQLite by default, PostgreSQL in a lab) at the latest schema, one session per transaction."""
    def __init__(self, url: str, retry_s: float = 0.0) -> None:
        self.url = url
        self.retry_s = retry_s
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True, connect_args=_bounded(url))
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


def _bounded(url: str) -> dict[str, object]:
    """PostgreSQL's bounded waits (`PG_TIMEOUTS`) that the URL does not set itself; nothing for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return {}
    return {name: value for name, value in PG_TIMEOUTS.items() if name not in parsed.query}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
