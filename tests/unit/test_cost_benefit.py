"""The cost answer on synthetic measurements whose cheapest configurations and switch point are known."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from farm.analysis.answer import analyse
from farm.analysis.configs import config_points
from farm.analysis.costbenefit import (
    MICRO_CHEAPER,
    MONO_CHEAPER,
    NO_DIFFERENCE,
    NOT_ENOUGH,
    SWITCH,
    Cheapest,
    CostBenefit,
    LoadCost,
    Switch,
    cost_benefit,
    outcome_of,
)
from farm.analysis.frame import scalable_replicas

SLO = 52.0
LOADS = [10, 20, 40, 80]


def mono_p95(n: int, load: int) -> float:
    """The monolith's p95 with ``n`` instances: 10 + 3·load/n ms; one instance costs 4."""
    return 10 + 3 * load / n


def micro_p95(catalog: int, load: int) -> float:
    """Microservices' p95 with ``catalog`` replicas of their bottleneck: 30 + 2·load/c ms; cost 4 + c."""
    return 30 + 2 * load / catalog


def known_mono(load: int) -> int:
    """The closed form: the fewest instances whose p95 (+ half a bucket) is within the SLO, × 4."""
    return 4 * next(n for n in range(1, 99) if round(mono_p95(n, load)) + 0.5 <= SLO)


def known_micro(load: int) -> int:
    """The closed form for microservices: 4 + the fewest catalog replicas within the SLO."""
    return 4 + next(c for c in range(1, 99) if round(micro_p95(c, load)) + 0.5 <= SLO)


def grid(reps: int, *, mono: Callable[[int, int], float] = mono_p95, micro: Callable[[int, int], float] = micro_p95,
         caches: tuple[str, ...] = ("none",), spread: float = 0.0, seed: int = 0,
         extra: Callable[[str, int, int], dict[str, object]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every configuration (monolith 1–6 instances, microservices 1–8 catalog replicas) at every load: cells with
    their declared cost and breakdown, and histograms of 400 requests at the configuration's p95 (each repetition
    off by ``spread`` at random)."""
    rng = np.random.default_rng(seed)
    cells, hist = [], []
    for cache in caches:
        for load in LOADS:
            for arch, sizes in (("monolith", range(1, 7)), ("microservices", range(1, 9))):
                for size in sizes:
                    for rep in range(1, reps + 1):
                        base = mono(size, load) if arch == "monolith" else micro(size, load)
                        ms = max(1, round(base * (1 + rng.normal(0, spread))))
                        params: dict[str, object] = {"instances": size} if arch == "monolith" else \
                            {"instances": 1, "replicas.catalog": size}
                        cost = 4.0 * size if arch == "monolith" else 4.0 + size
                        breakdown = {"app": {"replicas": size, "cost": cost}} if arch == "monolith" else \
                            {"catalog": {"replicas": size, "cost": size}, "gateway": {"replicas": 1, "cost": 1},
                             "pricing": {"replicas": 1, "cost": 1}, "cart": {"replicas": 1, "cost": 1},
                             "front": {"replicas": 1, "cost": 1}}
                        cid = f"{cache}-{arch}-{size}-{load}-{rep}"
                        hist.append({"cell_id": cid, "ms": ms, "count": 400})
                        cells.append({"id": cid, "architecture": arch, "cache": cache, "users": load, **params,
                                      "repetition": rep, "host": "h1", "status": "done",
                                      "generator_saturated": False, "requests": 400, "failures": 0, "rps": 40.0,
                                      "p50_ms": float(ms), "p95_ms": float(ms), "p99_ms": float(ms),
                                      "cache_hits": None, "cache_misses": None, "cost": cost,
                                      "replicas": scalable_replicas(breakdown),
                                      **(extra(arch, size, load) if extra else {})})
    frame = pd.DataFrame(cells)
    frame.attrs["params"] = sorted({"architecture", "cache", "users", "instances", "replicas.catalog"})
    return frame, pd.DataFrame(hist)


def test_each_architectures_cheapest_configuration_is_the_closed_forms() -> None:
    # Given every configuration measured three times, exactly at its model's p95
    cells, hist = grid(reps=3)
    # When the cost answer is computed against p95 <= 52 ms
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then at each load each architecture's cheapest configuration is the closed form's, with its replicas
    for point in answer.per_load:
        load = int(point.load)
        assert point.monolith is not None and point.microservices is not None
        assert point.monolith.cost == known_mono(load)
        assert point.microservices.cost == known_micro(load)
        assert point.monolith.replicas == {"app": known_mono(load) // 4}
        assert point.microservices.replicas is not None
        assert point.microservices.replicas["catalog"] == known_micro(load) - 4
        assert point.monolith.p95_high is not None and point.monolith.p95_high <= SLO


def test_the_switch_point_lies_between_the_loads_that_bracket_it() -> None:
    # Given the monolith cheaper at 10 users (4 against 5) and microservices cheaper from 20 (6 against 8)
    assert known_mono(10) < known_micro(10) and known_micro(20) < known_mono(20)
    cells, hist = grid(reps=3)
    # When the answer is computed
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then it is a switch within the bracket 10–20, never narrower than it, and said in one sentence
    assert answer.outcome == SWITCH and answer.switch is not None
    assert answer.switch.low == 10 and answer.switch.high == 20
    assert answer.switch.low <= answer.switch.at <= answer.switch.high
    assert [p.sign for p in answer.per_load] == [1, -1, -1, -1]
    assert answer.describe().startswith("switch at ~") and "between" not in answer.describe()
    assert "(95% interval 10–20)" in answer.describe()
    assert "at 20 users: cost 6 against the monolith's 8" in answer.describe()


def test_microservices_that_never_win_give_monolith_cheaper_throughout() -> None:
    # Given microservices whose bottleneck scales no better than the monolith's, at a higher base cost
    cells, hist = grid(reps=3, micro=lambda c, load: 10 + 20 * load / c)
    # When the answer is computed at 10, 20 and 40 users
    [answer] = cost_benefit(cells[cells["users"] != 80], hist, slo_ms=SLO)
    # Then the monolith is cheaper at every load and there is no switch
    assert answer.outcome == MONO_CHEAPER and answer.switch is None
    assert [p.sign for p in answer.per_load] == [1, 1, 1]
    assert "the monolith significantly cheaper at 10, 20, 40 users" in answer.describe()


def test_cheaper_throughout_is_never_said_with_an_inconclusive_load() -> None:
    # Given the same stacks also at 80 users, where neither architecture meets the SLO up to the costs measured
    cells, hist = grid(reps=3, micro=lambda c, load: 10 + 20 * load / c)
    # When the answer is computed
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then the monolith is not "cheaper throughout": not enough data, and the sentence says where and why
    assert [p.sign for p in answer.per_load] == [1, 1, 1, 0]
    assert answer.outcome == NOT_ENOUGH and answer.switch is None
    assert answer.describe().startswith("not enough data: the monolith significantly cheaper at 10, 20, 40 users; "
                                        "no significant difference at 80: the inconclusive loads need more")


def test_microservices_cheaper_at_every_load() -> None:
    cells, hist = grid(reps=3, mono=lambda n, load: 10 + 30 * load / n)
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    assert answer.outcome == MICRO_CHEAPER and answer.switch is None


def test_one_repetition_is_not_enough_data_but_says_the_estimates() -> None:
    # Given one repetition per configuration
    cells, hist = grid(reps=1)
    # When the answer is computed
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then there is no interval: not enough data, with the estimates' switch and the advice
    assert answer.outcome == NOT_ENOUGH and answer.indicative
    assert answer.switch is not None and 10 <= answer.switch.at <= 20
    assert "no interval" in answer.describe() and "repetitions: 3" in answer.describe()
    assert answer.per_load[0].monolith is not None and answer.per_load[0].monolith.cost == known_mono(10)


def test_noisy_repetitions_that_cannot_tell_costs_apart_give_no_significant_difference() -> None:
    # Given two repetitions 15% apart: every p95 interval is wide (Student's t with one degree of freedom)
    cells, hist = grid(reps=2, spread=0.15, seed=3)
    # When the answer is computed
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then no load is significantly cheaper either way
    assert answer.outcome == NO_DIFFERENCE and answer.switch is None
    assert all(p.sign == 0 for p in answer.per_load)


@pytest.mark.parametrize("flag", ["rate_saturated", "load_stalled", "load_mismatch"])
def test_a_flagged_configuration_never_meets_the_slo(flag: str) -> None:
    # Given the monolith's cheapest configuration at 20 users flagged in one repetition
    def extra(arch: str, size: int, load: int) -> dict[str, object]:
        return {flag: arch == "monolith" and size == 2 and load == 20}
    cells, hist = grid(reps=3, extra=extra)
    # When the answer is computed
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then the next configuration up is the cheapest that meets it
    point = next(p for p in answer.per_load if p.load == 20)
    assert point.monolith is not None and point.monolith.cost == 12
    assert point.monolith.cost_low == 8  # it may still meet: the interval says so


def test_a_saturated_generator_leaves_the_cell_out() -> None:
    cells, hist = grid(reps=3)
    cells.loc[(cells["architecture"] == "microservices") & (cells["users"] == 10), "generator_saturated"] = True
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    assert answer.per_load[0].load == 10 and answer.per_load[0].microservices is None
    assert answer.per_load[0].sign == 0


def test_error_ratio_over_the_slo_never_meets() -> None:
    cells, hist = grid(reps=3)
    cells.loc[(cells["architecture"] == "monolith") & (cells["users"] == 10) & (cells["instances"] == 1),
              "failures"] = 40
    [answer] = cost_benefit(cells, hist, slo_ms=SLO, max_error_ratio=0.01)
    assert answer.per_load[0].monolith is not None and answer.per_load[0].monolith.cost == 8


def test_one_answer_per_cache_setting_and_none_without_an_slo() -> None:
    cells, hist = grid(reps=3, caches=("none", "shared"))
    assert [a.cache for a in cost_benefit(cells, hist, slo_ms=SLO)] == ["none", "shared"]
    assert cost_benefit(cells, hist, slo_ms=None) == []


def test_configurations_are_kept_apart_with_their_interval() -> None:
    cells, hist = grid(reps=3)
    points = config_points(cells, hist, slo_ms=SLO)
    here = points[(points["architecture"] == "microservices") & (points["load"] == 40)]
    assert len(here) == 8 and set(here["n"]) == {3}
    assert (here[["p95_ms_lo", "p95_ms_hi"]].notna()).all().all()
    assert list(here.sort_values("cost")["meets"]) == [False, False, False, True, True, True, True, True]


def test_without_a_declared_cost_instances_times_the_cost_per_instance_decide() -> None:
    cells, hist = grid(reps=3)
    monolith = cells[cells["architecture"] == "monolith"].drop(columns=["cost", "replicas"])
    [answer] = [a for a in cost_benefit(pd.concat([monolith, cells[cells["architecture"] != "monolith"]]), hist,
                                        slo_ms=SLO, costs={"monolith": 4})]
    assert [p.monolith.cost for p in answer.per_load if p.monolith] == [known_mono(u) for u in LOADS]


def test_the_analysis_and_its_json_carry_the_cost_answer() -> None:
    cells, hist = grid(reps=3)
    analysis = analyse(cells, hist, slo_ms=SLO)
    [answer] = analysis.cost_benefit
    doc = json.loads(json.dumps(answer.as_json()))
    assert doc["cache"] == "none" and doc["outcome"] == SWITCH
    assert set(doc["switch"]) == {"at", "low", "high"}
    first = doc["per_load"][0]
    assert first["load"] == 10 and first["monolith"]["cost"] == 4 and first["microservices"]["cost"] == 5
    assert first["monolith"]["replicas"] == {"app": 1} and not math.isnan(first["monolith"]["p95_ms"])


def test_the_report_says_the_cost_answer_in_markdown_html_and_a_frontier_figure() -> None:
    from farm.report.html import Provenance, render_html, render_markdown

    # Given a sweep with an SLO whose answer is a switch
    cells, hist = grid(reps=3)
    analysis = analyse(cells, hist, slo_ms=SLO)
    provenance = Provenance("costs", "shop", "name: costs\n", {}, None, None, {"p95_ms": SLO})
    # When it is rendered
    markdown = render_markdown(analysis, provenance)
    html = render_html(analysis, provenance)
    # Then both carry the one-sentence answer, each load's cheapest configurations and (HTML) the frontier figure
    assert "## What does switching cost?" in markdown
    assert "| none | switch at ~13.3 users (95% interval 10–20)" in markdown
    assert "| none | 20 | cost 8 (interval 8): app×2 · p95 40 ms | cost 6 (interval 6): cart×1, catalog×2" in markdown
    assert "What does switching cost?" in html and html.count("<svg") >= 3
    assert "declared cost" in html  # the frontier's axis


def test_a_capacity_search_is_answered_by_its_cost_alone() -> None:
    # Given a search's cells, whose configurations differ from load to load
    cells, hist = grid(reps=3)
    # When analysed as a search
    analysis = analyse(cells, hist, slo_ms=SLO, search=True)
    # Then comparisons at equal replicas and of caches are not made; the cost answer is
    assert analysis.verdicts == [] and analysis.cache_verdicts == []
    assert [a.outcome for a in analysis.cost_benefit] == [SWITCH]


def test_a_price_says_each_cheapest_configuration_in_money_per_million_requests() -> None:
    from farm.report.html import Provenance, render_html, render_markdown
    from farm.sweep_scaling import Price

    # Given a sweep priced at 0.04 USD per cost unit and hour, each configuration sustaining 40 req/s
    cells, hist = grid(reps=3)
    analysis = analyse(cells, hist, slo_ms=SLO, price=Price(per_unit_hour=0.04, currency="USD"))
    # When its answer is given as JSON, Markdown and HTML
    [answer] = analysis.cost_benefit
    doc = json.loads(json.dumps(answer.as_json()))
    provenance = Provenance("costs", "shop", "name: costs\n", {}, None, None, {"p95_ms": SLO})
    markdown, html = render_markdown(analysis, provenance), render_html(analysis, provenance)
    # Then a million requests on the monolith's cost 4 at 40 req/s cost 4 × 0.04 × 10⁶ / (3600 × 40) = 1.11 USD
    first = doc["per_load"][0]
    assert doc["price"] == {"per_unit_hour": 0.04, "currency": "USD"}
    assert first["monolith"]["rps"] == pytest.approx(40.0)
    assert first["monolith"]["per_million_requests"] == pytest.approx(4 * 0.04 * 1e6 / (3600 * 40))
    assert first["monolith"]["currency"] == "USD"
    assert first["microservices"]["per_million_requests"] == pytest.approx(5 * 0.04 * 1e6 / (3600 * 40))
    row = "| none | 10 | cost 4 (interval 4): app×1 · p95 40 ms · 1.11 USD per million requests at 40 req/s |"
    assert row in markdown and "Priced at 0.04 USD per cost unit and hour" in markdown
    assert "1.11 USD per million requests at 40 req/s" in html and "Priced at 0.04 USD" in html


def test_without_a_price_no_money_is_said() -> None:
    cells, hist = grid(reps=3)
    [answer] = analyse(cells, hist, slo_ms=SLO).cost_benefit
    doc = answer.as_json()
    assert doc["price"] is None and "per_million_requests" not in doc["per_load"][0]["monolith"]


def point(load: float, mono: float | None, micro: float | None, sign: int) -> LoadCost:
    """One load's cheapest costs (None: no configuration up to cost 12 meets the SLO) and its significance."""
    def arch(cost: float | None) -> Cheapest:
        return Cheapest(cost, cost, None if cost is None else {"app": 1}, None if cost is None else 30.0, 25.0,
                        35.0, 3, False, 4, 12.0, 40.0)
    return LoadCost(float(load), arch(mono), arch(micro), sign)


def answer_of(points: list[LoadCost]) -> CostBenefit:
    outcome, switch = outcome_of(points)
    return CostBenefit("none", outcome, 3, points, switch, "users", SLO)


def test_neither_architecture_meeting_the_slo_anywhere_is_not_enough_data() -> None:
    # Given no configuration of either architecture meeting the SLO at any load
    answer = answer_of([point(10, None, None, 0), point(20, None, None, 0)])
    # Then there is nothing to compare: not enough data, naming the costs measured and what to do
    assert answer.outcome == NOT_ENOUGH and answer.switch is None
    assert "neither architecture meets the SLO at any load measured (configurations up to cost 12" in \
        answer.describe() and "raise search.max_cost" in answer.describe()


def test_not_enough_data_says_how_many_configurations_were_flagged() -> None:
    # Given every cell measured with a generator that
    # waited 2.5 ms per time slice for a CPU (a busy shared host)
    def extra(arch: str, size: int, load: int) -> dict[str, object]:
        return {"generator_wait_ms": 2.5}
    cells, hist = grid(reps=3, extra=extra)
    [answer] = cost_benefit(cells, hist, slo_ms=SLO)
    # Then nothing meets the SLO, and the sentence says why: every configuration measured was flagged
    measured = sum(p.monolith.measured + p.microservices.measured for p in answer.per_load
                   if p.monolith is not None and p.microservices is not None)
    assert answer.outcome == NOT_ENOUGH
    assert f"{measured} of the {measured} configurations measured were flagged" in answer.describe()
    assert "quieter generator host" in answer.describe()
    assert answer.as_json()["per_load"][0]["monolith"]["configurations_flagged"] == 6


def test_significant_both_ways_is_said_as_loads_that_disagree() -> None:
    # Given microservices significantly cheaper at 10 users and the monolith at 20
    answer = answer_of([point(10, 8, 5, -1), point(20, 8, 12, 1)])
    # Then the outcome claims no single answer, and the sentence says the curves cross both ways
    assert answer.outcome == NOT_ENOUGH and answer.switch is None
    assert "no significant difference" not in answer.describe().split(":")[0]
    assert answer.describe() == ("not enough data: the loads disagree: microservices significantly cheaper at 10 "
                                 "users; the monolith significantly cheaper at 20 users; the cost curves cross both "
                                 "ways, so there is no one switch point")


def test_the_switch_is_open_below_when_no_load_shows_the_monolith_cheaper() -> None:
    # Given microservices cheaper at 10 users by the estimates only (5 against 8), significantly from 20
    answer = answer_of([point(10, 8, 5, 0), point(20, 12, 6, -1)])
    # Then the switch is at or below 20: nothing measured bounds it from below
    assert answer.outcome == SWITCH and answer.switch == Switch(None, None, 20.0)
    assert answer.describe().startswith("switch at or below 20 users: from there microservices meet the SLO")
    assert "no load measured below it shows the monolith cheaper" in answer.describe()
    assert answer.as_json()["switch"] == {"at": None, "low": None, "high": 20.0}


def test_microservices_cheaper_at_some_loads_and_inconclusive_at_others_is_not_throughout() -> None:
    answer = answer_of([point(10, 8, 5, -1), point(20, 8, 7, 0), point(40, 12, 6, -1)])
    assert answer.outcome == NOT_ENOUGH and "no significant difference at 20" in answer.describe()


def test_the_switch_estimate_interpolates_where_the_estimates_change_sign() -> None:
    # Given the monolith no dearer at 10 (4 against 6), microservices cheaper by the estimates at 20 (7 against
    # 8) and significantly at 40 (6 against 12)
    answer = answer_of([point(10, 4, 6, 1), point(20, 8, 7, 0), point(40, 12, 6, -1)])
    # Then the interval runs from 10 to 40, and the estimate lies between 10 and 20, where the difference changes
    # sign (+2 at 10, -1 at 20: two thirds of the way), not between 10 and 40
    assert answer.outcome == SWITCH and answer.switch is not None
    assert (answer.switch.low, answer.switch.high) == (10, 40)
    assert answer.switch.at == pytest.approx(10 + 2 / 3 * 10)
