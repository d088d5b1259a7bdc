"""What every command shares: the consoles, the common options, settings and the store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from farm.commands.console import err, out, styled
from farm.life import CellStatus
from farm.settings import Settings

__all__ = ["STATE", "DbOption", "MaxCellsOption", "NameArg", "SweepFileArg", "coerce", "err", "open_store",
           "out", "root", "settings", "styled", "wait_idle"]

STATE: dict[str, Any] = {"debug": False}

# Help text is Rich markup: a literal "[" is written "\\[".
DbOption = Annotated[str | None, typer.Option("--db", metavar="URL", show_default=False,
                                              help="results database URL \\[env FARM_DATABASE_URL; "
                                                   "default sqlite:///farm.db]")]
SweepFileArg = Annotated[Path, typer.Argument(metavar="SWEEP.yaml", help="the sweep file (YAML)", show_default=False)]
MaxCellsOption = Annotated[int, typer.Option("--max-cells", min=1, metavar="N",
                                             help="refuse a sweep of more cells than this")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="the sweep's name", show_default=False)]


def root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks on errors")] = False) -> None:
    """Options that apply to every command."""
    STATE["debug"] = debug


def settings(db: str | None = None) -> Settings:
    """The one settings object for this invocation: environment, then flags."""
    base = Settings()
    updates: dict[str, Any] = {"debug": STATE["debug"]}
    if db:
        updates["database_url"] = db
    return base.model_copy(update=updates)


def open_store(cfg: Settings) -> Any:
    """The results store, migrated to the latest schema."""
    from farm.store.repository import Store

    store = Store(cfg.database_url)
    store.migrate()
    return store


def coerce(raw: str, like: Any) -> Any:
    """A command-line value converted to the type of ``like`` (bool, int, float), else the string itself."""
    if isinstance(like, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    for kind in (int, float):
        if isinstance(like, kind):
            try:
                return kind(raw)
            except ValueError:
                return raw
    return raw


def wait_idle(store: Any, name: str, status: Any, timeout: float) -> None:
    """Wait up to ``timeout`` seconds until no cell of the sweep is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and status(store, name).counts.get(CellStatus.RUNNING, 0):
        time.sleep(0.3)

