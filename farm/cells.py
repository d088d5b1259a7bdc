"""A stored cell as the core and the commands read it: a frozen value, not an ORM row.

`Store.cells` and `Store.group_work` (SQLAlchemy) and `farm.readonly.ReadOnlyStore.cells` (sqlite3, the lean
report path) both give `StoredCell`s, built from their rows by field name; nothing outside the store holds a row
or a session. Free of SQLAlchemy and pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from farm.load_level import LoadLevel


@dataclass(frozen=True)
class StoredMeasurement:
    """Locust statistics of one endpoint (or of all, name ``Aggregated``) in one cell's measured window."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    histogram: dict[str, Any]
    p50_ok_ms: float | None
    p90_ok_ms: float | None
    p95_ok_ms: float | None
    p99_ok_ms: float | None
    histogram_ok: dict[str, Any] | None


@dataclass(frozen=True)
class StoredCell:
    """One cell as stored: parameters, status, where and when it ran, its error, summary metrics and
    measurements (see `farm.store.models.CellRow` for each column)."""

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
    unfinished_requests: int | None
    users_active: int | None
    users_stalled: int | None
    late_starts: int | None
    concurrency_ratio: float | None
    load_stalled: bool | None
    load_mismatch: bool | None
    warnings: list[Any] | None
    cost: float | None
    cost_breakdown: dict[str, Any] | None
    cpu_ms_per_request: float | None
    probe: dict[str, Any] | None
    measurements: tuple[StoredMeasurement, ...] = ()

    @property
    def level(self) -> LoadLevel:
        """The cell's load level: its users, or the requests/s it offers."""
        return LoadLevel.of(self.params)

    @property
    def users(self) -> int:
        """Simulated users; 0 with open-loop load (the runner derives them from the rate)."""
        return self.level.users

    @property
    def instances(self) -> int:
        """App instances of the cell's configuration."""
        return int(self.params.get("instances", 1))


_CELL = tuple(f.name for f in fields(StoredCell) if f.name != "measurements")
_MEASUREMENT = tuple(f.name for f in fields(StoredMeasurement))


def stored_cell(row: Any, measurements: Any = ()) -> StoredCell:
    """A cell from a store's row (an ORM row, or a sqlite3 row as attributes) and its measurement rows."""
    return StoredCell(**{name: getattr(row, name) for name in _CELL},
                      measurements=tuple(StoredMeasurement(**{n: getattr(m, n) for n in _MEASUREMENT})
                                         for m in measurements))
