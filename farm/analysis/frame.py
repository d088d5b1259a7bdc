"""Stored cells as tidy data frames: one row per cell, and one row per histogram bucket."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from farm.compare import DEFAULT_COMPARISON, Comparison
from farm.host import host_class
from farm.load.stats import TOTAL

RESULT_COLUMNS = ("requests", "failures", "rps", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
# Percentiles of successful requests alone; RESULT_COLUMNS' include failed requests, and the analysis compares
# those (a timeout counts as slow); a point with too many errors never wins instead (see farm.analysis.verdict).
OK_COLUMNS = ("p50_ok_ms", "p90_ok_ms", "p95_ok_ms", "p99_ok_ms")
# lists and objects, kept out of the frame's columns
NESTED = ("params", "error", "sut_services", "cpu_sets", "cost_breakdown", "warnings")


def total_of(cell: Any) -> Any:
    """The cell's all-endpoint measurement, or None."""
    return next((m for m in cell.measurements if m.name == TOTAL), None)


def cell_record(cell: Any) -> dict[str, Any]:
    """One cell (a stored row) as a flat record in the results contract of `farm results --format json`."""
    total = total_of(cell)
    hits, misses = cell.cache_hits, cell.cache_misses
    sut = (cell.stack_metrics or {}).get("sut") or {}
    agreement = (cell.stack_metrics or {}).get("requests") or {}  # client vs server request counts
    looked_up = (hits or 0) + (misses or 0)
    record: dict[str, Any] = {
        "id": cell.id,
        "status": cell.status,
        "params": dict(cell.params),
        "repetition": cell.repetition,
        "host": cell.host,
        "host_class": host_class(cell.host_info) if cell.host_info else None,
        "cache_hit_ratio": (hits / looked_up) if hits is not None and misses is not None and looked_up else None,
        "cache_hits": hits,
        "cache_misses": misses,
        "generator_cpu_pct": cell.generator_cpu_pct,
        "generator_saturated": cell.generator_saturated,
        "sut_host": cell.sut_host,
        "sut_cpu_pct": sut.get("host_cpu_pct"),
        "sut_cpu_s": sut.get("cpu_s"),
        "sut_saturated": sut.get("saturated"),
        "sut_services": sut.get("services"),
        "server_requests": agreement.get("server"),
        "server_requests_services": ",".join(agreement["services"]) if agreement.get("services") else None,
        "request_mismatch": agreement.get("mismatch"),
        "offered_rps": cell.offered_rps,
        "achieved_rps": cell.achieved_rps,
        "rate_saturated": cell.rate_saturated,
        "cpu_sets": cell.cpu_sets,
        "host_cpu_pct": (cell.host_cpu or {}).get("host"),
        "stack_set_cpu_pct": (cell.host_cpu or {}).get("stack"),
        "generator_set_cpu_pct": (cell.host_cpu or {}).get("generator"),
        "stack_cpu_pct": (cell.host_cpu or {}).get("stack_cpu_pct"),  # the stack's processes, % of one core
        "host_saturated": cell.host_saturated,
        "cost": cell.cost,  # declared: Σ replicas × cost per replica (the stack's cost_unit)
        "cpu_ms_per_request": cell.cpu_ms_per_request,  # measured: the SUT's CPU per request over the window
        "cost_breakdown": cell.cost_breakdown,
        "probe": cell.probe,  # a capacity search's probe: why it was measured
        "warnings": list(cell.warnings or []),  # metrics that broke the stack contract: figures left empty
        # No request vanishes (farm.load.omission): null where not measured
        "unfinished_requests": cell.unfinished_requests,
        "users_active": cell.users_active,
        "users_stalled": cell.users_stalled,
        "late_starts": cell.late_starts,
        "concurrency_ratio": cell.concurrency_ratio,
        "load_stalled": cell.load_stalled,
        "load_mismatch": cell.load_mismatch,
        "error": None if cell.error_message is None else {
            "stage": cell.error_stage, "category": cell.error_category, "message": cell.error_message},
    }
    for column in (*RESULT_COLUMNS, *OK_COLUMNS):
        record[column] = getattr(total, column) if total is not None else None
    record["error_ratio"] = (total.failures / total.requests) if total is not None and total.requests else None
    return record


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
