"""The two consoles of the CLI, printing every user string literally; light enough for the fast read path."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

# Every string a user gave (sweep names, parameter values, paths, error text) is printed literally: no Rich markup,
# no emoji codes, no highlighting; styled parts are built as `Text` (see `styled`).
out = Console(width=None if sys.stdout.isatty() else 160, markup=False, emoji=False, highlight=False)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200, markup=False, emoji=False, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Literal text with some parts styled, e.g. ``styled(("error:", "red"), " ", message)``."""
    return Text.assemble(*parts)
