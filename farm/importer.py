"""Import of the classic script's results: Locust CSVs named ``output_u_{U}_i_{I}_stats.csv``.

Each stats file becomes one done cell (users U, instances I, plus any fixed parameters given), with its
per-endpoint rows as measurements. The classic CSVs hold only rounded percentiles, not histograms, so imported
cells carry those percentiles as they are. Unreadable files are reported by name, never skipped silently.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.load.stats import TOTAL, EndpointStats

STATS = re.compile(r"^output_u_(\d+)_i_(\d+)_stats\.csv$")
COMPANION = re.compile(r"^output_u_(\d+)_i_(\d+)_(stats_history|failures|exceptions)\.csv$")


@dataclass(frozen=True)
class ImportedCell:
    """One classic run: its parameters, how long it measured, and its per-endpoint statistics."""

    params: dict[str, Any]
    measured_s: float
    endpoints: tuple[EndpointStats, ...]
    total: EndpointStats
    source: str


@dataclass
class ImportScan:
    """What a folder held: readable runs, and files that could not be read, with the reason."""

    cells: list[ImportedCell] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _number(row: dict[str, str], *names: str) -> float | None:
    for name in names:
        raw = row.get(name)
        if raw not in (None, "", "N/A"):
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(f"{name}: {raw!r} is not a finite number")
            return value
    return None


def _count(row: dict[str, str], name: str) -> int:
    value = float(row[name])
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: {row[name]!r} is not a count")
    return int(value)


def _endpoint(row: dict[str, str], measured_s: float | None) -> EndpointStats:
    requests = _count(row, "Request Count")
    rps = _number(row, "Requests/s") or 0.0
    if measured_s:
        rps = requests / measured_s
    return EndpointStats(
        method=row.get("Type") or "", name=row["Name"], requests=requests,
        failures=_count(row, "Failure Count"), rps=rps, mean_ms=_number(row, "Average Response Time"),
        p50_ms=_number(row, "50%", "Median Response Time"), p90_ms=_number(row, "90%"), p95_ms=_number(row, "95%"),
        p99_ms=_number(row, "99%"), max_ms=_number(row, "100%", "Max Response Time"), histogram={})


def _measured_seconds(history: Path) -> float | None:
    try:
        with open(history, newline="") as fh:
            stamps = [float(r["Timestamp"]) for r in csv.DictReader(fh) if r.get("Timestamp")]
    except (OSError, KeyError, ValueError, csv.Error):
        return None
    return (max(stamps) - min(stamps)) or None if stamps else None


def read_run(path: Path, users: int, instances: int, fixed: dict[str, Any]) -> ImportedCell:
    """Read one stats CSV (and its history, for the run's length); ValueError names what is wrong."""
    history = path.with_name(path.name.replace("_stats.csv", "_stats_history.csv"))
    measured = _measured_seconds(history) if history.exists() else None
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read: {exc}") from exc
    if not rows or "Request Count" not in rows[0] or "Name" not in rows[0]:
        raise ValueError("not a Locust stats CSV (no 'Name' / 'Request Count' columns)")
    try:
        stats = [_endpoint(r, measured) for r in rows]
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"malformed row: {exc}") from exc
    totals = [s for s in stats if s.name == TOTAL]
    if not totals:
        raise ValueError("no 'Aggregated' row")
    total = totals[0]
    if measured is None:
        measured = total.requests / total.rps if total.rps else 0.0
    return ImportedCell({**fixed, "users": users, "instances": instances}, measured,
                        tuple(s for s in stats if s.name != TOTAL), total, path.name)


def scan(folder: Path, fixed: dict[str, Any]) -> ImportScan:
    """Every classic run in ``folder``; files that look like results but cannot be read are listed."""
    result = ImportScan()
    if not folder.is_dir():
        result.problems.append((str(folder), "not a folder"))
        return result
    for path in sorted(folder.iterdir()):
        match = STATS.match(path.name)
        if match is None:
            if path.name.startswith("output_") and path.suffix == ".csv" and not COMPANION.match(path.name):
                result.problems.append((path.name, "name does not match output_u_{U}_i_{I}_stats.csv"))
            continue
        try:
            result.cells.append(read_run(path, int(match[1]), int(match[2]), fixed))
        except ValueError as exc:
            result.problems.append((path.name, str(exc)))
    return result
