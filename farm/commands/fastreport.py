"""`farm report NAME --format json` answered before Typer, Rich's consoles, the settings model, SQLAlchemy or any
other command module is imported: a SQLite store is read with sqlite3 (`farm.readonly.ReadOnlyStore`), and only
the analysis (pandas, numpy) loads.

The plain form only — ``report NAME --format json`` (or ``-f json``) with ``--metric M`` and ``--db URL`` — and
the same document as the full command (`farm.report.build.report_json`). Anything else, and any error (an unknown
sweep, a store it cannot open), is left to the full path, which says it in its own words.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

METRICS = ("p50_ms", "p95_ms", "p99_ms")


def answer(argv: Sequence[str], default_url: str | None) -> bool:
    """Print the JSON report of ``report NAME --format json [...]`` and return True; False to take the full path.

    ``default_url``: the store URL from the environment, used without ``--db`` (None when only the full settings
    can tell).
    """
    request = parse(list(argv))
    if request is None:
        return False
    name, metric, db = request
    url = db if db is not None else default_url
    if url is None:
        return False
    import sqlite3

    from farm import readonly
    from farm.errors import FarmError
    from farm.report.build import report_json

    try:
        with readonly.connect(url) as conn:
            if conn is None:  # not a SQLite file at the newest schema: the full path migrates or explains
                return False
            text = json.dumps(report_json(readonly.ReadOnlyStore(conn), name, metric=metric), indent=2) + "\n"
    except (FarmError, sqlite3.Error, ValueError, TypeError, KeyError, OSError):
        return False  # the full path reports it, one line and its exit code
    sys.stdout.write(text)
    return True


def parse(argv: list[str]) -> tuple[str, str, str | None] | None:
    """(sweep name, metric, --db) of the plain JSON report command; None for anything else."""
    if not argv or argv[0] != "report":
        return None
    options: dict[str, str] = {}
    words: list[str] = []
    rest = argv[1:]
    while rest:
        word = rest.pop(0)
        key, eq, value = word.partition("=")
        if key in ("--format", "-f", "--metric", "--db"):
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            canonical = "--format" if key == "-f" else key
            if canonical in options:
                return None
            options[canonical] = value
        elif word.startswith("-"):
            return None
        else:
            words.append(word)
    if len(words) != 1 or options.get("--format") != "json" or options.get("--db") == "":
        return None
    metric = options.get("--metric", "p95_ms")
    if metric not in METRICS:
        return None
    return words[0], metric, options.get("--db")
