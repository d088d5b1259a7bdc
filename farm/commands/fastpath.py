"""`farm sweeps` and `farm status NAME` answered before Typer, pydantic, SQLAlchemy or Celery is imported
(and `farm report NAME --format json` before Typer and the other commands: `farm.commands.fastreport`).

Only the plain forms (with or without ``--db URL``) of a SQLite store at the newest schema are answered here,
printed by the same views as the full commands; anything else is left to the full path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_DATABASE_URL = "sqlite:///farm.db"  # farm.settings.Settings.database_url's default
DATABASE_ENV = "FARM_DATABASE_URL"


def answer(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Print the answer to a plain read command and return True, or return False to take the full path."""
    if argv and argv[0] == "report":
        from farm.commands import fastreport

        return fastreport.answer(argv, _environment_url(environ))
    request = _parse(list(argv))
    if request is None:
        return False
    command, name, db = request
    url = db if db is not None else _environment_url(environ)
    if url is None:
        return False
    import sqlite3

    from farm import readonly
    from farm.commands.console import out
    from farm.commands.views import failure_lines, flagged_lines, status_table, sweeps_table, varying_keys

    try:  # everything is read and laid out before anything is printed, so that a decline prints nothing
        with readonly.connect(url) as conn:
            if conn is None:
                return False
            if command == "sweeps":
                answers: list[Any] = [sweeps_table(readonly.sweeps(conn))]
            else:
                st = readonly.status(conn, name or "")
                if st is None:
                    return False
                keys = varying_keys(st.spec)
                answers = [status_table(st, keys), *failure_lines(st.failed, keys), *flagged_lines(st.flagged, keys)]
    except (sqlite3.Error, ValueError, TypeError, KeyError, OSError):  # locked, unreadable, unexpected: full path
        return False
    for renderable in answers:
        out.print(renderable)
    return True


def _parse(argv: list[str]) -> tuple[str, str | None, str | None] | None:
    """(command, sweep name, --db) of `sweeps [--db URL]` or `status NAME [--db URL]`; None for anything else."""
    if not argv or argv[0] not in ("sweeps", "status"):
        return None
    command, rest, db, words = argv[0], argv[1:], None, []
    while rest:
        word = rest.pop(0)
        if word == "--db" and rest and db is None:
            db = rest.pop(0)
        elif word.startswith("--db=") and db is None:
            db = word.removeprefix("--db=")
        elif word.startswith("-"):
            return None
        else:
            words.append(word)
    if db == "":
        return None
    if command == "sweeps":
        return (command, None, db) if not words else None
    return (command, words[0], db) if len(words) == 1 else None


def _environment_url(environ: Mapping[str, str]) -> str | None:
    """The store URL as Settings reads it (FARM_DATABASE_URL, else the default); None when that is ambiguous."""
    spelled = [key for key in environ if key.upper() == DATABASE_ENV]
    if spelled and spelled != [DATABASE_ENV]:  # Settings matches the name in any case; leave that to Settings
        return None
    if DATABASE_ENV in environ:
        return environ[DATABASE_ENV] or None
    return DEFAULT_DATABASE_URL
