"""Cells as a tidy data frame: one row per cell, its parameters and its total statistics."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from farm.load.stats import TOTAL

RESULT_COLUMNS = ("requests", "failures", "rps", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


def cell_record(cell: Any) -> dict[str, Any]:
    """One cell (a stored row) as a flat record in the results contract of `farm results --format json`."""
    total = next((m for m in cell.measurements if m.name == TOTAL), None)
    hits, misses = cell.cache_hits, cell.cache_misses
    looked_up = (hits or 0) + (misses or 0)
    record: dict[str, Any] = {
        "id": cell.id,
        "status": cell.status,
        "params": dict(cell.params),
        "repetition": cell.repetition,
        "host": cell.host,
        "cache_hit_ratio": (hits / looked_up) if hits is not None and misses is not None and looked_up else None,
        "cache_hits": hits,
        "cache_misses": misses,
        "generator_cpu_pct": cell.generator_cpu_pct,
        "generator_saturated": cell.generator_saturated,
        "error": None if cell.error_message is None else {
            "stage": cell.error_stage, "category": cell.error_category, "message": cell.error_message},
    }
    for column in RESULT_COLUMNS:
        record[column] = getattr(total, column) if total is not None else None
    record["error_ratio"] = (total.failures / total.requests) if total is not None and total.requests else None
    return record


def cells_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A data frame with one row per cell: parameters as columns, then results."""
    rows = []
    for r in records:
        rows.append({**r["params"], **{k: v for k, v in r.items() if k not in ("params", "error")}})
    return pd.DataFrame(rows)
