"""Honest bounds: an interval never claims a value its quantity cannot take — a latency below 0 ms, a ratio
outside [0, 1], a difference of two latencies beyond what either could be."""

from __future__ import annotations

import pandas as pd

from farm.analysis.answer import analyse
from farm.analysis.surfaces import surfaces


def two_repetitions_far_apart() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per architecture and load, two repetitions whose p95 lie far apart (10 vs 80 ms), one of them with half
    its requests failed and a hit ratio near 1: two repetitions stretch an interval by ~9 (Student's t)."""
    cells, hist = [], []
    for arch, scale in (("monolith", 1.0), ("microservices", 1.2)):
        for users in (5, 10):
            for rep, (ms, failures, hits) in enumerate(((10, 0, 990), (80, 1000, 500)), start=1):
                cid = f"{arch}-{users}-{rep}"
                value = int(ms * scale)
                hist.append({"cell_id": cid, "ms": value, "count": 2000})
                cells.append({"id": cid, "architecture": arch, "cache": "local", "instances": 1, "users": users,
                              "repetition": rep, "host": "h1", "status": "done", "generator_saturated": False,
                              "requests": 2000, "failures": failures, "rps": 50.0 * rep,
                              "p50_ms": float(value), "p95_ms": float(value), "p99_ms": float(value),
                              "cache_hits": hits, "cache_misses": 1000 - hits})
    return pd.DataFrame(cells), pd.DataFrame(hist)


def test_a_latency_interval_never_goes_below_zero_and_ratios_stay_within_zero_and_one() -> None:
    # Given two repetitions far apart at every point (the quickstart's report showed a p95 from -39.5 ms)
    surface = surfaces(*two_repetitions_far_apart())
    # Then every latency and throughput bound is ≥ 0, and every ratio's within [0, 1]
    for column in ("p50_ms", "p95_ms", "p99_ms", "rps"):
        assert (surface[f"{column}_lo"] >= 0).all(), surface[[column, f"{column}_lo"]]
        assert (surface[f"{column}_lo"] <= surface[column]).all()
    for column in ("error_ratio", "cache_hit_ratio"):
        assert (surface[f"{column}_lo"] >= 0).all() and (surface[f"{column}_hi"] <= 1).all(), \
            surface[[column, f"{column}_lo", f"{column}_hi"]]
    # And the interval still holds its estimate (it was cut, not moved)
    assert (surface["p95_ms_hi"] >= surface["p95_ms"]).all()


def test_a_difference_interval_stays_within_what_the_two_latencies_allow() -> None:
    # Given the same measurements
    cells, hist = two_repetitions_far_apart()
    analysis = analyse(cells, hist)
    surface = analysis.surface.set_index(["architecture", "users"])
    [verdict] = analysis.verdicts
    for point in verdict.points:
        mono_hi = surface.loc[("monolith", point.load), "p95_ms_hi"]
        micro_hi = surface.loc[("microservices", point.load), "p95_ms_hi"]
        # Then microservices − monolith is never below −(the monolith's upper bound) nor above microservices'
        assert point.low is not None and point.high is not None
        assert point.low >= -mono_hi - 1e-9 and point.high <= micro_hi + 1e-9, (point, mono_hi, micro_hi)
        assert point.low <= point.diff <= point.high
