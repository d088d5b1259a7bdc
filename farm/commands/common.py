"""What every command shares: the consoles, the --db option, settings and the store."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from farm.settings import Settings

# Every string a user gave (sweep names, parameter values, paths, error text) is printed literally: no Rich markup,
# no emoji codes, no highlighting; styled parts are built as `Text` (see `styled`).
out = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False, highlight=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200, markup=False, emoji=False, highlight=False)
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


def label(params: dict[str, Any]) -> str:
    """A cell's short label: architecture, cache, instances and users."""
    return ", ".join(f"{k}={params[k]}" for k in ("architecture", "cache", "instances", "users") if k in params)


def wait_idle(store: Any, name: str, status: Any, timeout: float) -> None:
    """Wait up to ``timeout`` seconds until no cell of the sweep is running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and status(store, name).counts.get("running", 0):
        time.sleep(0.3)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Literal text with some parts styled, e.g. ``styled(("error:", "red"), " ", message)``."""
    return Text.assemble(*parts)
