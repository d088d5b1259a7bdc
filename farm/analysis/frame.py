"""Stored cells as tidy data frames: one row per cell, and one row per histogram bucket."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from farm.analysis.records import NESTED, total_of
from farm.compare import DEFAULT_COMPARISON, Comparison


def cells_frame(records: Iterable[dict[str, Any]], compare: Comparison = DEFAULT_COMPARISON) -> pd.DataFrame:
    """A data frame with one row per cell: parameters as columns, then results (``attrs["params"]`` names the
    parameter columns). The sweep's architecture and cache parameters (``compare``) are the columns
    ``architecture`` and ``cache``, whatever the stack calls them: the analysis reads those."""
    records = [{**r, "params": compare.roles(r["params"])} for r in records]
    rows = [{**r["params"], **{k: v for k, v in r.items() if k not in NESTED},
             "replicas": scalable_replicas(r.get("cost_breakdown"))}
            for r in records]
    frame = pd.DataFrame(rows)
    frame.attrs["params"] = sorted({k for r in records for k in r["params"]})
    return frame


def scalable_replicas(breakdown: dict[str, Any] | None) -> str | None:
    """The replicas of each scalable service in a cell's cost breakdown, as JSON text (a frame cell stays
    hashable), e.g. ``{"catalog": 2, "gateway": 1}``; None without a breakdown."""
    found = {str(s): int(v["replicas"]) for s, v in (breakdown or {}).items()
             if isinstance(v, dict) and v.get("scalable", True) and isinstance(v.get("replicas"), int | float)}
    return json.dumps(dict(sorted(found.items()))) if found else None


def histogram_frame(cells: Iterable[Any]) -> pd.DataFrame:
    """Long format (cell_id, ms, count) of every cell's all-endpoint response-time histogram."""
    ids: list[str] = []
    ms: list[int] = []
    counts: list[int] = []
    for cell in cells:
        total = total_of(cell)
        if total is None or not total.histogram:
            continue
        for bucket, count in total.histogram.items():
            ids.append(cell.id)
            ms.append(int(bucket))
            counts.append(int(count))
    return pd.DataFrame({"cell_id": ids, "ms": np.asarray(ms, dtype=np.int64),
                         "count": np.asarray(counts, dtype=np.int64)})
