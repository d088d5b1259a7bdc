"""Which cache wins, per instance count and load: on synthetic measurements whose answer is known."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from farm.analysis.caches import NOT_ENOUGH, TIED, WINS, CacheVerdict, cache_verdicts
from farm.analysis.surfaces import surfaces_with_draws


def cells_of(latency: Callable[[str, int, int], float], caches: list[str], instances: list[int], loads: list[int],
             reps: int, *, seed: int = 1, failures: Callable[[str, int], int] | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WordPress-like cells (no architecture): response times normal around ``latency(cache, n, users)`` with
    10% spread and 4% drift between repetitions; Locust-rounded histograms of 2000 requests."""
    rng = np.random.default_rng(seed)
    cells, hist = [], []
    for cache in caches:
        for n in instances:
            for load in loads:
                for rep in range(1, reps + 1):
                    centre = latency(cache, n, load) * (1 + rng.normal(0, 0.04))
                    samples = np.maximum(1, np.round(rng.normal(centre, centre * 0.1, 2000))).astype(int)
                    cid = f"{cache}-{n}-{load}-{rep}"
                    values, counts = np.unique(samples, return_counts=True)
                    hist += [{"cell_id": cid, "ms": int(v), "count": int(c)}
                             for v, c in zip(values, counts, strict=True)]
                    cells.append({"id": cid, "cache": cache, "instances": n, "users": load, "repetition": rep,
                                  "host": "h1", "status": "done", "generator_saturated": False, "requests": 2000,
                                  "failures": failures(cache, load) if failures else 0, "rps": load * 5.0,
                                  "p50_ms": float(np.percentile(samples, 50)),
                                  "p95_ms": float(np.percentile(samples, 95)),
                                  "p99_ms": float(np.percentile(samples, 99)), "cache_hits": None,
                                  "cache_misses": None})
    frame = pd.DataFrame(cells).assign(architecture="-")
    return frame, pd.DataFrame(hist)


def verdicts_of(cells: pd.DataFrame, hist: pd.DataFrame) -> dict[int, CacheVerdict]:
    surface, draws = surfaces_with_draws(cells, hist)
    return {v.instances: v for v in cache_verdicts(surface, draws)}


def wordpress(cache: str, n: int, users: int) -> float:
    """No cache: 40 ms + 2 ms per user per instance share; a local cache halves the work at one instance but
    is split over n instances; a shared cache costs a 5 ms hop but does not split."""
    load = users / n
    base = {"none": 40 + 2 * load, "local": 20 * n + 1.0 * load, "shared": 25 + 1.0 * load}
    return base[cache]


def test_the_known_winner_is_found_at_each_instance_count_and_load() -> None:
    # Given 4 repetitions: at 1 instance local (20 + u) beats shared (25 + u) and none; at 3 instances the
    # split local cache (60 + u/3) loses to shared (25 + u/3) everywhere
    cells, hist = cells_of(wordpress, ["none", "local", "shared"], [1, 3], [10, 30], reps=4)
    found = verdicts_of(cells, hist)
    # Then local wins at 1 instance and shared at 3, significantly, at both loads
    assert [(p.leader, p.outcome) for p in found[1].points] == [("local", WINS), ("local", WINS)]
    assert [(p.leader, p.outcome) for p in found[3].points] == [("shared", WINS), ("shared", WINS)]
    assert found[3].describe() == "shared wins at 10–30 users"
    assert found[1].label() == "1 instance" and found[3].as_json()["per_load"][0]["leader"] == "shared"
    assert set(found[1].points[0].values) == {"none", "local", "shared"}


def test_two_caches_within_noise_are_tied_not_a_winner() -> None:
    # Given local and shared identical (30 ms) and none far slower, 3 repetitions
    def same(cache: str, n: int, users: int) -> float:
        return 80.0 if cache == "none" else 30.0

    cells, hist = cells_of(same, ["none", "local", "shared"], [2], [10, 20], reps=3)
    [verdict] = verdicts_of(cells, hist).values()
    # Then at every load the leader is tied with the other cache, and none is beaten
    for point in verdict.points:
        assert point.outcome == TIED and {point.leader, *point.tied_with} == {"local", "shared"}
    assert "≈" in verdict.describe() and "no significant difference" in verdict.describe()


def test_one_repetition_names_the_lowest_but_says_not_enough_data() -> None:
    # Given one repetition
    cells, hist = cells_of(wordpress, ["none", "shared"], [1], [10], reps=1)
    [verdict] = verdicts_of(cells, hist).values()
    # Then the leader is named without a claim, and the sentence says what would give an interval
    assert verdict.points[0].outcome == NOT_ENOUGH and verdict.points[0].leader == "shared"
    assert verdict.describe().startswith("not enough data: no interval; lowest measured: shared at 10 users")
    assert "set repetitions: 3 or more for an interval)" in verdict.describe()


def test_a_cache_over_the_error_slo_cannot_win() -> None:
    # Given shared fastest but failing 5% of its requests at 30 users
    def failing(cache: str, users: int) -> int:
        return 100 if cache == "shared" and users == 30 else 0

    cells, hist = cells_of(wordpress, ["none", "shared"], [1], [10, 30], reps=3, failures=failing)
    [verdict] = verdicts_of(cells, hist).values()
    # Then at 30 users the leader is the slower cache, and shared is marked as unable to win
    at30 = verdict.points[1]
    assert at30.leader == "none" and at30.cannot_win == ("shared",) and at30.outcome == TIED
    assert verdict.points[0].leader == "shared" and verdict.points[0].outcome == WINS


def test_a_sweep_with_one_cache_setting_has_no_cache_comparison() -> None:
    cells, hist = cells_of(wordpress, ["shared"], [1, 3], [10], reps=3)
    assert verdicts_of(cells, hist) == {}


def test_the_report_of_a_stack_without_architectures_answers_which_cache_wins() -> None:
    from farm.analysis.answer import analyse
    from farm.report.html import Provenance, render_html, render_markdown

    # Given WordPress-like cells with no architecture parameter at all
    cells, hist = cells_of(wordpress, ["none", "local", "shared"], [1, 3], [10, 30], reps=3)
    cells = cells.drop(columns=["architecture"])
    # When the sweep is analysed and rendered
    analysis = analyse(cells, hist)
    provenance = Provenance("classic", "wordpress", "", {}, None, None, None)
    markdown, html = render_markdown(analysis, provenance), render_html(analysis, provenance)
    # Then there is no architecture verdict, and the answer is which cache wins per instance count
    assert analysis.verdicts == [] and [c.instances for c in analysis.cache_verdicts] == [1, 3]
    assert "## Which cache gives the lowest p95" in markdown
    assert "| 3 instances | shared wins at 10–30 users |" in markdown
    assert "monolith/microservices pairs" not in markdown and "monolith/microservices pairs" not in html
    assert "Which cache gives the lowest" in html and "shared wins at 10–30 users" in html
