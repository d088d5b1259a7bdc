"""The analysis on synthetic measurements with a known answer: surfaces, intervals, crossover, recommendation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farm.analysis.answer import analyse
from farm.analysis.recommend import phrase, recommend
from farm.analysis.surfaces import surfaces

USERS = [5, 10, 15, 25, 30, 40]


def true_latency(arch: str, users: int) -> float:
    """Monolith 10 + 1.0·u ms, microservices 20 + 0.5·u ms: they cross at exactly 20 users."""
    return 10 + 1.0 * users if arch == "monolith" else 20 + 0.5 * users


def synthetic(reps: int, noise: float = 0.04, seed: int = 0, caches: tuple[str, ...] = ("none",),
              host: str = "h1") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells whose response times are normal around the true latency, with run-to-run noise; and histograms."""
    rng = np.random.default_rng(seed)
    cells, hist = [], []
    for cache in caches:
        for arch in ("monolith", "microservices"):
            for users in USERS:
                for rep in range(1, reps + 1):
                    centre = true_latency(arch, users) * (1 + rng.normal(0, noise))
                    samples = np.maximum(1, np.round(rng.normal(centre, centre * 0.1, 2000))).astype(int)
                    cid = f"{host}-{cache}-{arch}-{users}-{rep}"
                    values, counts = np.unique(samples, return_counts=True)
                    hist += [{"cell_id": cid, "ms": int(v), "count": int(c)}
                             for v, c in zip(values, counts, strict=True)]
                    cells.append({"id": cid, "architecture": arch, "cache": cache, "instances": 1, "users": users,
                                  "repetition": rep, "host": host, "status": "done", "generator_saturated": False,
                                  "requests": 2000, "failures": 0, "rps": users * 5.0,
                                  "p50_ms": float(np.percentile(samples, 50)),
                                  "p95_ms": float(np.percentile(samples, 95)),
                                  "p99_ms": float(np.percentile(samples, 99)),
                                  "cache_hits": None, "cache_misses": None})
    return pd.DataFrame(cells), pd.DataFrame(hist)


def test_the_known_crossover_is_recovered_within_tolerance() -> None:
    # Given noisy measurements of two lines that cross at 20 users (p95 of a scale family crosses there too)
    cells, hist = synthetic(reps=5)
    # When the crossover is computed
    [found] = analyse(cells, hist).crossovers
    # Then it is found between the bracketing grid loads, near 20, with an interval that contains it
    assert found.status == "crossover" and found.bracket == (15, 25)
    assert found.users == pytest.approx(20, abs=1.5)
    assert found.low is not None and found.high is not None
    assert found.low <= found.users <= found.high
    assert found.low <= 20 <= found.high


def test_intervals_shrink_with_more_repetitions() -> None:
    def mean_width(reps: int) -> float:
        surface = surfaces(*synthetic(reps=reps, seed=reps))
        return float((surface["p95_ms_hi"] - surface["p95_ms_lo"]).mean())

    # (1/sqrt(4) in theory; the bucket floor and a small-sample bootstrap keep it above that)
    assert mean_width(12) < mean_width(3) * 0.75


def test_difference_intervals_narrow_with_repetitions() -> None:
    def width(reps: int) -> float:
        [verdict] = analyse(*synthetic(reps=reps, seed=10 + reps)).verdicts
        return float(np.mean([p.high - p.low for p in verdict.points if p.low is not None and p.high is not None]))

    assert width(12) < width(3)


def test_percentiles_come_from_merged_histograms_not_averages() -> None:
    # Given two repetitions: one fast (all 10 ms), one with a slow tail (half 10 ms, half 100 ms)
    cells = pd.DataFrame([
        {"id": "a", "architecture": "monolith", "cache": "none", "instances": 1, "users": 5, "status": "done",
         "generator_saturated": False, "requests": 100, "failures": 0, "rps": 1.0, "p50_ms": 10.0,
         "p95_ms": 10.0, "p99_ms": 10.0, "cache_hits": None, "cache_misses": None},
        {"id": "b", "architecture": "monolith", "cache": "none", "instances": 1, "users": 5, "status": "done",
         "generator_saturated": False, "requests": 100, "failures": 0, "rps": 1.0, "p50_ms": 100.0,
         "p95_ms": 100.0, "p99_ms": 100.0, "cache_hits": None, "cache_misses": None}])
    hist = pd.DataFrame([{"cell_id": "a", "ms": 10, "count": 100}, {"cell_id": "b", "ms": 10, "count": 50},
                         {"cell_id": "b", "ms": 100, "count": 50}])
    row = surfaces(cells, hist).iloc[0]
    # Then p50 is that of all 200 samples (10 ms, 150 of them), not the mean of the two p50s (55 ms)
    assert row["p50_ms"] == 10
    assert row["p95_ms"] == 100


def test_failed_saturated_and_skipped_cells_are_excluded_and_listed() -> None:
    cells, hist = synthetic(reps=1)
    cells.loc[0, "status"] = "failed"
    cells.loc[1, "generator_saturated"] = True
    cells.loc[2, "status"] = "skipped"
    result = analyse(cells, hist)
    assert sorted(result.excluded["reason"]) == ["failed", "generator saturated", "skipped"]
    assert int(result.surface["n"].sum()) == len(cells) - 3


def test_microservices_never_faster_is_slower_throughout() -> None:
    cells, hist = synthetic(reps=5)
    cells = cells[cells["users"] <= 10]
    [found] = analyse(cells, hist[hist["cell_id"].isin(cells["id"])]).verdicts
    assert found.verdict == "slower throughout" and found.crossovers == []
    assert found.describe().startswith("slower throughout")


def test_recommendation_picks_the_cheapest_configuration_meeting_the_slo() -> None:
    configs = pd.DataFrame([
        {"label": "local", "architecture": "monolith", "config": '{"instances": 1}', "load": u, "cost": 1.0,
         "p95_ms": p, "error_ratio": 0.0, "indicative": False, "meets": p <= 60}
        for u, p in ((10, 20), (50, 80), (100, 400))] + [
        {"label": "shared", "architecture": "microservices", "config": '{"instances": 2}', "load": u, "cost": 2.0,
         "p95_ms": p, "error_ratio": 0.0, "indicative": False, "meets": p <= 60}
        for u, p in ((10, 30), (50, 45), (100, 90))])
    choices = recommend(configs)
    assert [(c.users, c.architecture) for c in choices] == [(10, "monolith"), (50, "microservices"),
                                                            (100, None)]
    assert phrase(choices) == ["up to ~10 users: monolith, local cache, 1 instance",
                               "at ~50 users: microservices, shared cache, 2 instances",
                               "from ~100 users: no measured configuration meets the SLO"]


def test_hosts_are_compared_within_each_host_and_their_agreement_reported() -> None:
    a_cells, a_hist = synthetic(reps=5, seed=1, host="h1")
    b_cells, b_hist = synthetic(reps=5, seed=2, host="h2")
    result = analyse(pd.concat([a_cells, b_cells]), pd.concat([a_hist, b_hist]))
    assert result.hosts == ["h1", "h2"]
    assert {c.host for c in result.host_crossovers} == {"h1", "h2"}
    assert all(v.verdict == "crossover" for v in result.host_verdicts)
    assert not result.agreement.empty and result.agreement["agree"].mean() > 0.5


def test_sut_cost_is_cpu_per_request_per_configuration_and_empty_without_sut_hosts() -> None:
    from farm.analysis.sut import sut_cost

    cells = pd.DataFrame([
        {"architecture": "monolith", "cache": "none", "instances": 1, "users": 5, "status": "done",
         "requests": 1000, "sut_cpu_s": 2.0, "sut_cpu_pct": 40.0, "sut_saturated": False},
        {"architecture": "monolith", "cache": "none", "instances": 1, "users": 5, "status": "done",
         "requests": 3000, "sut_cpu_s": 4.0, "sut_cpu_pct": 60.0, "sut_saturated": True},
        {"architecture": "microservices", "cache": "none", "instances": 1, "users": 5, "status": "failed",
         "requests": 10, "sut_cpu_s": 9.0, "sut_cpu_pct": 99.0, "sut_saturated": True},
    ])
    table = sut_cost(cells)
    assert list(table["architecture"]) == ["monolith"]  # the failed cell is left out
    row = table.iloc[0]
    assert row["cpu_ms_per_request"] == 1.5 and row["sut_cpu_pct"] == 50.0 and row["saturated"] == 1
    assert sut_cost(cells.drop(columns=["sut_cpu_s"])).empty


def test_configurations_differing_in_another_parameter_are_compared_apart_never_pooled() -> None:
    from farm.analysis.answer import separate_other_parameters
    from farm.analysis.frame import cells_frame

    records = [{"params": {"architecture": a, "cache": "none", "instances": 1, "users": 6, "model": m},
                "id": f"{a}{m}", "status": "done", "repetition": 1} for a in ("monolith", "microservices")
               for m in ("crossing", "identical")]
    cells = separate_other_parameters(cells_frame(records))
    assert sorted(set(cells["cache"])) == ["none · model=crossing", "none · model=identical"]
    # And a parameter that does not vary changes nothing
    same = [{**r, "params": {**r["params"], "model": "crossing"}} for r in records]
    assert set(separate_other_parameters(cells_frame(same))["cache"]) == {"none"}
