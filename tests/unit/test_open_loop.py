"""Open-loop load (issue 9 item 5) in the spec, the plan and the analysis; the successful requests' p95 in the
store (item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.analysis.answer import analyse
from farm.analysis.records import cell_record
from farm.analysis.verdict import CROSSOVER, INCONCLUSIVE, LOWER, RATE_UNIT
from farm.errors import SpecError
from farm.load.runner import LoadRequest, LocustRunner
from farm.load.stats import EndpointStats, LoadResult, with_successful
from farm.plan import expand
from farm.report.html import Provenance, render_markdown
from farm.spec import LoadSpec, load_axis, locust_users, open_loop, parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from tests.conftest import ROOT
from tests.unit.test_verdicts import sweep

RATE_SWEEP = ("name: r\nstack: shop\nmatrix: {architecture: [monolith, microservices], rate: [100, 50, 200]}\n"
              "load: {warmup: 30s, spawn_rate: 10}\n")


def parse(text: str):
    return parse_sweep(text, source="s.yaml", base=ROOT)


def test_a_rate_sweep_is_accepted_and_its_users_come_from_the_rate() -> None:
    # Given a sweep whose load levels are requests/s offered
    loaded = parse(RATE_SWEEP)
    # Then its load axis is the rate and Locust gets rate × 1 s users, each paced once a second
    assert load_axis(loaded.spec) == "rate"
    assert locust_users(loaded.spec) == [100, 50, 200]
    assert open_loop(200, loaded.spec.load) == (200, 1.0)
    # And a pacing budget changes the users while the rate users / pacing stays the offered one
    users, pacing = open_loop(7, LoadSpec(pacing=0.5))
    assert users == 4 and users / pacing == pytest.approx(7)
    users, pacing = open_loop(100_000, LoadSpec(pacing=60))  # the cap shortens the pacing instead
    assert users == 100_000 and pacing == pytest.approx(1.0)


@pytest.mark.parametrize(("matrix", "message"), [
    ("{users: [1], rate: [5]}", "has both 'users' and 'rate'; give one"),
    ("{architecture: [monolith]}", "needs a 'users' list .closed loop.*or a 'rate' list"),
    ("{rate: [0]}", "'rate' values must be requests per second above 0"),
    ("{rate: [fast]}", "'rate' values must be requests per second above 0"),
])
def test_users_and_rate_are_exactly_one_of(matrix: str, message: str) -> None:
    # Given a matrix with both load axes, neither, or a rate that is not one
    # When it is read, Then it is refused with one line
    with pytest.raises(SpecError, match=message) as caught:
        parse(f"name: r\nstack: shop\nmatrix: {matrix}\n")
    assert "\n" not in str(caught.value)


def test_the_ramp_rule_and_pacing_make_sense_in_rate_mode() -> None:
    # Given 200 req/s offered (200 users) spawned at 10/s: a 20 s ramp in a 10 s warm-up
    with pytest.raises(SpecError, match=r"ramp of 200 users .*open loop: users = rate × load.pacing"):
        parse(RATE_SWEEP.replace("30s", "10s"))
    # And a pacing of 0.25 s needs only 50 users: it fits
    assert parse(RATE_SWEEP.replace("30s", "10s, pacing: 0.25s")).spec.load.pacing == 0.25
    # But pacing without a rate is refused
    with pytest.raises(SpecError, match=r"load\.pacing: only open-loop load is paced"):
        parse("name: u\nstack: shop\nmatrix: {users: [1]}\nload: {pacing: 1s}\n")


def test_a_users_sweep_keeps_its_fingerprint_without_pacing() -> None:
    # Given a closed-loop sweep: pacing (unset) is not part of what it means
    spec = parse("name: u\nstack: shop\nmatrix: {users: [1]}\n").spec
    assert "pacing" not in spec.model_dump(mode="json")["load"]


def test_a_rate_sweep_plans_cells_in_ascending_rate_grouped_without_it() -> None:
    # Given a rate sweep
    loaded = parse(RATE_SWEEP)
    # When it is planned
    plan = expand(loaded.spec, loaded.manifest)
    # Then each architecture is one group whose cells offer 50, 100 then 200 req/s
    assert len(plan.groups) == 2
    for group in plan.groups:
        assert "rate" not in group.config and "users" not in group.config
        assert [c.load for c in group.cells] == [50.0, 100.0, 200.0]
        assert all(c.users == 0 and c.stack_params() == group.config for c in group.cells)


def saturating(arch: str, load: int) -> float:
    """Monolith 10 + r/10 ms, microservices 30 ms: microservices lower above 200 req/s."""
    return 10 + load / 10 if arch == "monolith" else 30.0


def test_the_analysis_load_axis_is_the_offered_rate() -> None:
    # Given three repetitions of a rate sweep whose architectures cross at 200 req/s offered
    cells, hist = sweep(saturating, [50, 100, 300, 400], reps=3)
    cells = cells.rename(columns={"users": "rate"})
    # When it is analysed
    analysis = analyse(cells, hist)
    [verdict] = analysis.verdicts
    # Then the crossover is in req/s offered, and every word says so
    assert analysis.unit == RATE_UNIT and verdict.unit == RATE_UNIT
    assert verdict.verdict == CROSSOVER
    [crossing] = verdict.crossovers
    assert crossing.bracket == (100, 300)
    assert "req/s offered" in verdict.describe() and verdict.as_json()["unit"] == RATE_UNIT
    assert analysis.crossovers[0].unit == RATE_UNIT


def test_a_point_that_fell_short_of_its_offered_rate_never_wins() -> None:
    # Given microservices faster at 400 req/s offered, but achieving less than 95% of it there
    cells, hist = sweep(saturating, [50, 100, 300, 400], reps=3)
    cells = cells.rename(columns={"users": "rate"})
    cells["rate_saturated"] = (cells["architecture"] == "microservices") & (cells["rate"] == 400)
    # When it is analysed
    [verdict] = analyse(cells, hist).verdicts
    # Then 400 is no win for microservices, and the point names the side that fell short; 300 still is
    points = {p.load: p for p in verdict.points}
    assert points[400].classification == INCONCLUSIVE and points[400].saturated == ("microservices",)
    assert points[300].classification == LOWER and points[300].saturated == ()
    assert verdict.as_json()["points"][3]["saturated"] == ["microservices"]
    # And the point stays in the surface, flagged
    surface = analyse(cells, hist).surface
    flagged = surface[surface["rate_saturated"]]
    assert flagged[["architecture", "users"]].values.tolist() == [["microservices", 400]]


def test_the_store_keeps_both_p95s_and_the_offered_and_achieved_rate(tmp_path: Path) -> None:
    # Given a stored rate sweep and a result whose failures were slow
    store = Store(f"sqlite:///{tmp_path / 'farm.db'}")
    store.migrate()
    loaded = parse(RATE_SWEEP)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    total = EndpointStats("", "Aggregated", 100, 10, 40.0, 20.0, 5.0, 150.0, 150.0, 150.0, 150.0, {5: 90, 150: 10})
    total = with_successful(total, {"5": 90})
    result = LoadResult((), total, 2.5, 1.0)
    cell = plan.cells[0]
    store.mark_running(cell.id, {"name": "h1"})
    # When it is recorded as a cell that offered 50 req/s and achieved 40
    store.record_result(cell.id, result, StackMetrics(None, None, []), offered_rps=50.0, rate_saturated=True)
    # Then the cell's record carries both p95s and both rates, flagged
    record = cell_record(next(c for c in store.cells("r") if c.id == cell.id))
    assert (record["p95_ms"], record["p95_ok_ms"]) == (150.0, 5.0)
    assert (record["offered_rps"], record["achieved_rps"], record["rate_saturated"]) == (50.0, 40.0, True)


def test_open_loop_load_runs_past_the_window_for_at_least_one_pacing_interval(tmp_path: Path) -> None:
    # Given a cell paced every 5 s (users answered within 5 s are not short of the rate)
    paced = LoadRequest(locustfile=tmp_path / "s.py", host="http://127.0.0.1:1", users=10, spawn_rate=10,
                        duration_s=10.0, warmup_s=2.0, artefacts=tmp_path, pacing_s=5.0)
    # When Locust's command line is built
    command = LocustRunner().command(paced)
    # Then each user is paced, and a request started at the window's end has 5 s to be counted
    assert command[command.index("--farm-pacing") + 1] == "5.0"
    assert command[command.index("--farm-grace") + 1] == "5.0"
    # And a closed-loop cell keeps the scenario's own wait and the usual grace
    closed = LocustRunner().command(LoadRequest(locustfile=tmp_path / "s.py", host="http://127.0.0.1:1", users=10,
                                                spawn_rate=10, duration_s=10.0, warmup_s=2.0, artefacts=tmp_path))
    assert "--farm-pacing" not in closed and "--farm-grace" not in closed


def test_the_markdown_report_speaks_in_req_s_offered_and_shows_the_flag() -> None:
    # Given a rate sweep whose microservices fell short of 400 req/s offered
    cells, hist = sweep(saturating, [50, 100, 300, 400], reps=3)
    cells = cells.rename(columns={"users": "rate"})
    cells["rate_saturated"] = (cells["architecture"] == "microservices") & (cells["rate"] == 400)
    # When its report is rendered as Markdown
    text = render_markdown(analyse(cells, hist), Provenance("r", "calibrated", "", {}, None, None, None))
    # Then the load column, the verdict and the surface are in req/s offered, and the point is flagged
    assert "| cache | inst | req/s offered | diff ms |" in text
    assert "crossover at ~" in text and "req/s offered (95% interval" in text
    assert "| microservices | none | 1 | 400 | 3 |" in text and "| rate short |" in text
    assert "Flagged (kept in the answer): 3 short of the offered rate" in text
