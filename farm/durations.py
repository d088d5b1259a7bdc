"""Parsing of human durations such as ``15s``, ``2m`` or ``1h30m``."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int) -> float:
    """Seconds in a duration given as a number of seconds or as text like ``1m30s``; ValueError if not."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15s, 2m or 1h30m")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif not isinstance(value, str):
        raise ValueError("expected a duration such as 15s, 2m or 1h30m")
    else:
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif text and _PART.sub("", text) == "":
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(text))
        else:
            raise ValueError(f"'{value}' is not a duration; write e.g. 15s, 2m or 1h30m")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds, e.g. 15s, 2m or 1h30m")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form of a number of seconds, e.g. ``2m05s``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
