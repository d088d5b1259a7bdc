"""Text shown to a user in one line: clipped, made printable, or the tail of a command's or a log's output."""

from __future__ import annotations

import unicodedata
from pathlib import Path


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with "…" at the end."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` with every character that does not print (a newline, a control or format character) as "?"."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def one_line(text: str) -> str:
    """``text`` with every control, format or line/paragraph separator character escaped, so it prints as one
    line and shows what it holds."""
    if all(c == " " or unicodedata.category(c)[0] not in "CZ" for c in text):
        return text
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


def tail(text: str, lines: int = 3, limit: int = 300) -> str:
    """The last ``lines`` non-blank lines of a command's output, joined by " | ", printable, and cut to ``limit``
    characters at the front (the end of an output says what went wrong)."""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    joined = printable(" | ".join(kept))
    return joined if len(joined) <= limit else "…" + joined[-(limit - 1):]


def tail_file(path: Path, lines: int = 3) -> str:
    """The last ``lines`` lines of a log file: joined by " | " for a message (three or fewer), else one a line;
    "(no output)" when it is empty or unreadable."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    if not text:
        return "(no output)"
    return " | ".join(text[-lines:]) if lines <= 3 else "\n".join(text[-lines:])
