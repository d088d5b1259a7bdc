"""A stored cell as a flat record (the results contract of `farm results --format json`), without pandas:
`farm results` answers without importing it (about a second at every call); `farm.analysis.frame` makes the
records data frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from farm.host import host_class
from farm.load.stats import TOTAL, EndpointStats

if TYPE_CHECKING:
    from farm.cells import StoredCell

RESULT_COLUMNS = ("requests", "failures", "rps", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
# Percentiles of successful requests alone; RESULT_COLUMNS' include failed requests, and the analysis compares
# those (a timeout counts as slow); a point with too many errors never wins instead (see farm.analysis.verdict).
OK_COLUMNS = ("p50_ok_ms", "p90_ok_ms", "p95_ok_ms", "p99_ok_ms")
# lists and objects, kept out of the frame's columns
NESTED = ("params", "error", "sut_services", "cpu_sets", "cost_breakdown", "warnings")


def total_of(cell: StoredCell) -> EndpointStats | None:
    """The cell's all-endpoint measurement, or None."""
    return next((m for m in cell.measurements if m.name == TOTAL), None)


def cell_record(cell: StoredCell) -> dict[str, Any]:
    """One cell (as stored) as a flat record in the results contract of `farm results --format json`."""
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
        "generator_wait_ms": (cell.host_cpu or {}).get("generator_wait_ms"),  # Locust's run-queue wait per slice
        "host_saturated": cell.host_saturated,
        "cost": cell.cost,  # declared: Σ replicas × cost per replica (the stack's cost_unit)
        "cpu_ms_per_request": cell.cpu_ms_per_request,  # measured: the SUT's CPU per request over the window
        "cost_breakdown": cell.cost_breakdown,
        "probe": cell.probe,  # a capacity search's probe: why it was measured
        "warnings": list(cell.warnings or []),  # metrics that broke the stack contract: figures left empty
        # No request vanishes (farm.load.omission): null where not measured
        **cell.check.as_extras(),
        "error": None if cell.error_message is None else {
            "stage": cell.error_stage, "category": cell.error_category, "message": cell.error_message},
    }
    for column in (*RESULT_COLUMNS, *OK_COLUMNS):
        record[column] = getattr(total, column) if total is not None else None
    record["error_ratio"] = (total.failures / total.requests) if total is not None and total.requests else None
    return record
