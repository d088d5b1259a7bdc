"""A stored cell as the core and the commands read it: a frozen value, not an ORM row.

`Store.cells` and `Store.group_work` (SQLAlchemy) and `farm.readonly.ReadOnlyStore.cells` (sqlite3, the lean
report path) both give `StoredCell`s, built from their rows by field name; nothing outside the store holds a row
or a session. Free of SQLAlchemy and pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from farm.load.omission import LoadCheck
from farm.load.stats import HISTOGRAMS, EndpointStats
from farm.load_level import AtLoadLevel


@dataclass(frozen=True)
class StoredCell(AtLoadLevel):
    """One cell as stored: parameters, status, where and when it ran, its error, summary metrics, the check of
    its load and its measurements (see `farm.store.models.CellRow` for each column)."""

    id: str
    group_id: str
    position: int
    params: dict[str, Any]
    repetition: int
    status: str
    host: str | None
    sut_host: str | None
    host_info: dict[str, Any] | None
    stage_times: dict[str, Any]
    started_at: datetime | None
    finished_at: datetime | None
    error_stage: str | None
    error_category: str | None
    error_message: str | None
    measured_s: float | None
    warmup_s: float | None
    generator_cpu_pct: float | None
    generator_saturated: bool | None
    cache_hits: int | None
    cache_misses: int | None
    stack_metrics: dict[str, Any] | None
    artefacts: str | None
    offered_rps: float | None
    achieved_rps: float | None
    rate_saturated: bool | None
    cpu_sets: dict[str, Any] | None
    host_cpu: dict[str, Any] | None
    host_saturated: bool | None
    warnings: list[Any] | None
    cost: float | None
    cost_breakdown: dict[str, Any] | None
    cpu_ms_per_request: float | None
    probe: dict[str, Any] | None
    check: LoadCheck  # requests and users that vanished in its window
    measurements: tuple[EndpointStats, ...] = ()  # each endpoint's, and the total (name ``Aggregated``)


_CELL = tuple(f.name for f in fields(StoredCell) if f.name not in ("check", "measurements"))
_CHECK = LoadCheck.columns()
_ENDPOINT = tuple(f.name for f in fields(EndpointStats) if f.name not in HISTOGRAMS)


def stored_cell(row: Any, measurements: Any = ()) -> StoredCell:
    """A cell from a store's row (an ORM row, or a sqlite3 row as attributes) and its measurement rows."""
    return StoredCell(**{name: getattr(row, name) for name in _CELL},
                      check=LoadCheck(**{name: getattr(row, name) for name in _CHECK}),
                      measurements=tuple(stored_endpoint(m) for m in measurements))


def stored_endpoint(row: Any) -> EndpointStats:
    """An endpoint's statistics from its measurement row (the JSON column keys histograms by text)."""
    return EndpointStats(**{name: getattr(row, name) for name in _ENDPOINT},
                         histogram=_histogram(row.histogram) or {}, histogram_ok=_histogram(row.histogram_ok))


def _histogram(stored: dict[str, Any] | None) -> dict[int, int] | None:
    return None if stored is None else {int(ms): int(n) for ms, n in stored.items()}
