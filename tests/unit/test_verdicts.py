"""Verdicts with significance and honest intervals, on synthetic measurements whose answer is known."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from farm.analysis.answer import analyse
from farm.analysis.surfaces import surfaces
from farm.analysis.verdict import CROSSOVER, FASTER, HIGHER, INCONCLUSIVE, LOWER, NO_DIFFERENCE, NOT_ENOUGH, Verdict

Latency = Callable[[str, int], float]


def sweep(latency: Latency, loads: list[int], reps: int, *, noise: float = 0.04, seed: int = 0,
          failures: Callable[[str, int], int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells of both architectures at ``loads``: response times normal around ``latency`` (10% spread), the
    centre moving ``noise`` from repetition to repetition; Locust-rounded histograms of 2000 requests."""
    rng = np.random.default_rng(seed)
    cells, hist = [], []
    for arch in ("monolith", "microservices"):
        for load in loads:
            for rep in range(1, reps + 1):
                centre = latency(arch, load) * (1 + rng.normal(0, noise))
                samples = np.maximum(1, np.round(rng.normal(centre, centre * 0.1, 2000))).astype(int)
                cid = f"{arch}-{load}-{rep}"
                values, counts = np.unique(samples, return_counts=True)
                hist += [{"cell_id": cid, "ms": int(v), "count": int(c)} for v, c in zip(values, counts, strict=True)]
                cells.append({"id": cid, "architecture": arch, "cache": "none", "instances": 1, "users": load,
                              "repetition": rep, "host": "h1", "status": "done", "generator_saturated": False,
                              "requests": 2000, "failures": failures(arch, load) if failures else 0,
                              "rps": load * 5.0, "p50_ms": float(np.percentile(samples, 50)),
                              "p95_ms": float(np.percentile(samples, 95)), "p99_ms": float(np.percentile(samples, 99)),
                              "cache_hits": None, "cache_misses": None})
    return pd.DataFrame(cells), pd.DataFrame(hist)


def fixed(values: dict[tuple[str, int], int], reps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cells whose every request took exactly ``values[(arch, load)]`` ms, identical in every repetition."""
    cells, hist = [], []
    for (arch, load), ms in values.items():
        for rep in range(1, reps + 1):
            cid = f"{arch}-{load}-{rep}"
            hist.append({"cell_id": cid, "ms": ms, "count": 500})
            cells.append({"id": cid, "architecture": arch, "cache": "none", "instances": 1, "users": load,
                          "repetition": rep, "host": "h1", "status": "done", "generator_saturated": False,
                          "requests": 500, "failures": 0, "rps": 1.0, "p50_ms": float(ms), "p95_ms": float(ms),
                          "p99_ms": float(ms), "cache_hits": None, "cache_misses": None})
    return pd.DataFrame(cells), pd.DataFrame(hist)


def only(cells_hist: tuple[pd.DataFrame, pd.DataFrame], **kwargs: float) -> Verdict:
    [verdict] = analyse(*cells_hist, **kwargs).verdicts  # type: ignore[arg-type]
    return verdict


def lines(arch: str, users: int) -> float:
    """Monolith 10 + u ms, microservices 20 + u/2 ms: they cross at exactly 20 users."""
    return 10 + users if arch == "monolith" else 20 + 0.5 * users


USERS = [5, 10, 15, 25, 30, 40]


def test_a_known_crossover_is_recovered_inside_its_interval() -> None:
    # Given five repetitions of two lines that cross at 20 users
    # When the verdict is computed
    verdict = only(sweep(lines, USERS, reps=5))
    # Then it is one crossover, near 20, whose interval holds 20, microservices faster above it
    assert verdict.verdict == CROSSOVER and not verdict.indicative
    [crossing] = verdict.crossovers
    assert crossing.at == pytest.approx(20, abs=2) and crossing.low <= 20 <= crossing.high
    assert crossing.to_lower and crossing.bracket == (15, 25)
    # And loads far from it are significant on either side
    classes = {p.load: p.classification for p in verdict.points}
    assert classes[5] == HIGHER and classes[40] == LOWER
    assert verdict.share_no_crossing == 0.0
    assert verdict.describe().startswith("crossover at ~")


def test_two_crossings_are_both_reported() -> None:
    # Given microservices slower at low and high load, faster in between
    def dip(arch: str, users: int) -> float:
        return 40.0 if arch == "monolith" else (25.0 if 20 <= users <= 30 else 60.0)

    # When the verdict is computed
    verdict = only(sweep(dip, [5, 10, 20, 30, 40, 50], reps=4))
    # Then both crossings are reported, in order, each with its bracket and direction
    assert verdict.verdict == CROSSOVER
    assert [(c.bracket, c.to_lower) for c in verdict.crossovers] == [((10, 20), True), ((30, 40), False)]
    assert all(c.low <= c.at <= c.high for c in verdict.crossovers)
    assert verdict.describe().startswith("crossovers at ~")


def test_identical_architectures_show_no_significant_difference() -> None:
    # Given two architectures with the same latency model
    def same(_arch: str, users: int) -> float:
        return 10 + 0.5 * users

    # When the verdict is computed
    verdict = only(sweep(same, USERS, reps=5, seed=7))
    # Then no load is significant and there is no crossover
    assert verdict.verdict == NO_DIFFERENCE, [(p.load, p.diff, p.low, p.high) for p in verdict.points]
    assert verdict.crossovers == []
    assert {p.classification for p in verdict.points} == {INCONCLUSIVE}


def test_one_repetition_is_not_enough_data_and_says_how_many_would_give_an_interval() -> None:
    # Given one repetition per point
    verdict = only(sweep(lines, USERS, reps=1))
    # Then there is no interval: not enough data, indicative, with the advice
    assert verdict.verdict == NOT_ENOUGH and verdict.indicative and verdict.repetitions == 1
    assert all(p.low is None and p.classification == INCONCLUSIVE for p in verdict.points)
    assert verdict.advice() is not None and "repetitions: 3" in verdict.advice()  # type: ignore[operator]
    # And the measured sign change is named by its grid bracket (what `farm refine` narrows)
    assert [c.bracket for c in verdict.crossovers] == [(15, 25)]
    assert "not enough data" in verdict.describe() and "repetitions: 3" in verdict.describe()


def test_two_repetitions_give_an_indicative_verdict() -> None:
    # Given two repetitions per point
    verdict = only(sweep(lines, USERS, reps=2))
    # Then each load has an interval, but the answer is indicative and says how many repetitions would do
    assert verdict.verdict != NOT_ENOUGH and verdict.indicative
    assert all(p.low is not None for p in verdict.points)
    assert "indicative: 2 repetitions; set repetitions: 3 or more for an interval to be trusted" in verdict.describe()


def test_no_interval_is_narrower_than_the_histogram_bucket() -> None:
    # Given repetitions that all measured exactly the same bucket: 10 ms, 150 ms and 1500 ms
    values = {("monolith", 1): 10, ("microservices", 1): 10, ("monolith", 2): 150, ("microservices", 2): 150,
              ("monolith", 3): 1500, ("microservices", 3): 1500}
    cells, hist = fixed(values, reps=4)
    # When the surface is computed
    surface = surfaces(cells, hist).set_index(["architecture", "users"])
    # Then each interval spans at least its bucket (1, 10, 100 ms), never zero width
    widths = (surface["p95_ms_hi"] - surface["p95_ms_lo"]).xs("monolith")
    assert list(widths) == [1.0, 10.0, 100.0]
    # And the difference 0 is inconclusive, its interval both buckets wide
    verdict = only((cells, hist))
    assert verdict.verdict == NO_DIFFERENCE
    assert [(p.low, p.high) for p in verdict.points] == [(-1.0, 1.0), (-10.0, 10.0), (-100.0, 100.0)]


def test_a_crossover_interval_is_never_narrower_than_its_grid_bracket() -> None:
    # Given identical repetitions that cross sharply between 2 and 3 users (every resample crosses there)
    values = {("monolith", u): 20 for u in (1, 2, 3, 4)} | {("microservices", u): 30 if u <= 2 else 10
                                                            for u in (1, 2, 3, 4)}
    verdict = only(fixed(values, reps=3))
    # Then the crossing is interpolated inside 2–3 and its interval is "2–3", not "2.5–2.5"
    [crossing] = verdict.crossovers
    assert crossing.at == pytest.approx(2.5)
    assert (crossing.low, crossing.high) == (2.0, 3.0)
    assert "95% interval 2–3" in verdict.describe()


def test_a_point_over_the_error_slo_never_wins() -> None:
    # Given microservices clearly faster everywhere, but failing 5% of requests at 30 and 40 users
    def faster(arch: str, users: int) -> float:
        return 40.0 if arch == "monolith" else 20.0

    def errors(arch: str, users: int) -> int:
        return 100 if arch == "microservices" and users >= 30 else 0

    verdict = only(sweep(faster, [10, 20, 30, 40], reps=3, failures=errors), max_error_ratio=0.01)
    # Then those loads are not "lower" and name the side over the SLO; the answer is not "faster throughout"
    classes = {p.load: (p.classification, p.over_error_slo) for p in verdict.points}
    assert classes[10] == (LOWER, ())
    assert classes[30] == (INCONCLUSIVE, ("microservices",)) and classes[40][0] == INCONCLUSIVE
    assert verdict.verdict != FASTER
    # And with a looser SLO the same data is faster throughout
    assert only(sweep(faster, [10, 20, 30, 40], reps=3, failures=errors), max_error_ratio=0.1).verdict == FASTER


def test_the_json_shape_of_a_verdict() -> None:
    # Given a verdict with a crossover
    verdict = only(sweep(lines, USERS, reps=5))
    # When it is written as JSON
    data = json.loads(json.dumps(verdict.as_json()))
    # Then it holds the documented keys with the documented shapes
    assert {"verdict", "crossovers", "points", "share_no_crossing", "share_multiple", "repetitions",
            "indicative"} <= set(data)
    assert data["verdict"] == "crossover" and data["repetitions"] == 5 and data["indicative"] is False
    assert set(data["crossovers"][0]) >= {"at", "low", "high"}
    assert [set(p) >= {"load", "classification", "diff", "low", "high"} for p in data["points"]] == [True] * 6
    assert 0 <= data["share_no_crossing"] <= 1 and 0 <= data["share_multiple"] <= 1


def test_the_bootstrap_is_deterministic() -> None:
    cells, hist = sweep(lines, USERS, reps=4)
    assert analyse(cells, hist).verdicts == analyse(cells, hist).verdicts


def test_a_load_measured_equal_is_no_side_of_the_bracket() -> None:
    # Given microservices slower at 10, equal (same bucket) at 20, faster at 30 users, identical repetitions
    values = {("monolith", 10): 20, ("monolith", 20): 20, ("monolith", 30): 20,
              ("microservices", 10): 30, ("microservices", 20): 20, ("microservices", 30): 10}
    verdict = only(fixed(values, reps=3))
    # Then the crossing is at 20 but its interval is the whole 10–30 bracket, not 20–30
    [crossing] = verdict.crossovers
    assert crossing.at == pytest.approx(20) and (crossing.low, crossing.high) == (10.0, 30.0)


def test_the_recommendation_judges_points_without_enough_repetitions_on_their_estimate_and_says_so() -> None:
    # Given one repetition per point and an SLO every monolith point meets
    result = analyse(*sweep(lines, [5, 10], reps=1), slo_ms=200)
    # Then the choice is the monolith, marked indicative
    assert [c.architecture for c in result.choices] == ["monolith", "monolith"]
    assert all(c.indicative for c in result.choices)
    assert result.recommendation == ["at every load measured (5–10 users): monolith, none cache, 1 instance "
                                     "(indicative: fewer than 3 repetitions)"]


def test_over_many_sweeps_the_verdict_holds_at_its_stated_level() -> None:
    # Given 20 independent sweeps of identical architectures (3 repetitions: the fewest with a trusted interval),
    # and 20 of two lines crossing at 20 users (5 repetitions)
    def same(_arch: str, users: int) -> float:
        return 10 + 0.5 * users

    null = [only(sweep(same, USERS, reps=3, seed=100 + s)).verdict for s in range(20)]
    crossing = [only(sweep(lines, USERS, reps=5, seed=200 + s)) for s in range(20)]
    # Then identical architectures are called different in at most about 5% of sweeps (the band is joint over
    # the loads and stretched for few repetitions; unstretched, 3 of these 20 were called different)
    assert sum(v != NO_DIFFERENCE for v in null) <= 1
    # And the crossover is found, its interval holding 20 users, in at least 95% of sweeps
    covered = [v.verdict == CROSSOVER and any(c.low <= 20 <= c.high for c in v.crossovers) for v in crossing]
    assert sum(covered) >= 19
