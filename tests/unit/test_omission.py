"""Issue 20 items 1-3 and 5 as logic: stalled users, late starts and Little's law from what the plugin measured;
their storage per cell; and a stalled point never the faster side of a verdict, a cache's win, or the SLO's choice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from farm.analysis.answer import analyse
from farm.analysis.records import cell_record
from farm.analysis.verdict import INCONCLUSIVE, LOWER, NO_DIFFERENCE, SLOWER
from farm.load.omission import check_load, concurrency_ratio, is_stalled, load_flags
from farm.load.runner import LoadRequest
from farm.load.stats import EndpointStats, LoadResult, UserLoad, parse_locust_stats
from tests.unit.test_execute_rate import MemoryStack
from tests.unit.test_verdicts import fixed

OK = UserLoad(completed=40, think_s=1.8, present_s=2.0)
STUCK = UserLoad(completed=0, think_s=0.0, present_s=2.0)
THINKER = UserLoad(completed=0, think_s=2.0, present_s=2.0)  # thought through the whole window: not stalled


def result(users: tuple[UserLoad, ...], *, requests: int = 100, rps: float = 50.0, mean_ms: float = 20.0,
           unfinished: int = 0, late: int = 0) -> LoadResult:
    total = EndpointStats("", "Aggregated", requests, unfinished, rps, mean_ms, mean_ms, mean_ms, mean_ms, mean_ms,
                          mean_ms, {int(mean_ms): requests})
    return LoadResult((), total, 2.0, 1.0, unfinished_requests=unfinished, late_starts=late, users=users)


def test_a_user_with_no_completed_request_and_less_think_time_than_the_window_is_stalled() -> None:
    assert is_stalled(STUCK) and not is_stalled(OK) and not is_stalled(THINKER)
    check = check_load(result((OK, OK, STUCK, THINKER)), 4, open_loop=False)
    assert (check.users_active, check.users_stalled, check.load_stalled) == (2, 1, True)


def test_littles_law_ratio_is_throughput_times_response_plus_think_time_over_users() -> None:
    # 50 req/s × (20 ms + 3.6 s of think over 100 requests = 36 ms) = 2.8 users of 4
    assert concurrency_ratio(4, 50.0, 20.0, 3.6, 100) == pytest.approx(50 * 0.056 / 4)
    assert concurrency_ratio(4, 0.0, None, 0.0, 0) is None
    # Given two healthy users that spent the window in requests and think time
    healthy = check_load(result((OK, OK), rps=50.0, mean_ms=4.0, requests=100), 2, open_loop=False)
    # Then 50 × (4 ms + 36 ms) = 2 users: in range, not flagged
    assert healthy.concurrency_ratio == pytest.approx(1.0) and healthy.load_mismatch is False
    assert healthy.load_stalled is False
    # And the same throughput with twice the users leaves half their time unaccounted for: a mismatch
    half = check_load(result((OK, OK, STUCK, STUCK), rps=50.0, mean_ms=4.0, requests=100), 4, open_loop=False)
    assert half.concurrency_ratio == pytest.approx(0.5) and half.load_mismatch is True


def test_open_loop_flags_late_starts_and_has_no_closed_loop_ratio() -> None:
    check = check_load(result((OK, OK), late=3), 2, open_loop=True)
    assert (check.late_starts, check.load_stalled, check.concurrency_ratio, check.load_mismatch) == (3, True, None,
                                                                                                      None)
    assert check_load(result((OK, OK)), 2, open_loop=True).load_stalled is False


def test_statistics_without_the_load_section_store_nothing_about_it() -> None:
    document = {"measured_s": 2.0, "stats": [], "total": {"num_requests": 1, "num_failures": 0,
                                                           "total_response_time": 5, "response_times": {"5": 1}}}
    parsed = parse_locust_stats(document)
    assert (parsed.users, parsed.unfinished_requests, parsed.late_starts) == (None, None, None)
    assert check_load(parsed, 2, open_loop=False).as_extras()["load_stalled"] is None
    document["load"] = {"users": [{"completed": 3, "think_s": 1.5, "present_s": 2.0}], "unfinished_requests": 1,
                        "late_starts": 0}
    parsed = parse_locust_stats(document)
    assert parsed.users == (UserLoad(3, 1.5, 2.0),) and parsed.unfinished_requests == 1


class Stalls:
    """A load generator whose second user is stuck and one of whose requests never finished."""

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None, on_measure_end: Callable[[], None] | None = None,
            settled: Callable[[], bool] | None = None) -> LoadResult:
        return result((OK, STUCK), rps=50.0, mean_ms=4.0, requests=100, unfinished=1)


def test_a_cell_stores_its_unfinished_requests_stalled_users_and_ratio(tmp_path: Path) -> None:
    # Given a group of one cell whose load had a stuck user and an unfinished request
    from farm.execute import ExecutionContext, execute_group
    from farm.plan import expand
    from farm.spec import parse_sweep
    from farm.store.repository import Store
    from tests.conftest import ROOT

    loaded = parse_sweep("name: s\nstack: sleepy\nmatrix: {users: [2]}\nload: {warmup: 1s, duration: 2s}\n",
                         source=str(tmp_path / "s.yaml"), base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store = Store(f"sqlite:///{tmp_path / 'farm.db'}")
    store.migrate()
    store.create_or_resume(loaded, plan)
    ctx = ExecutionContext(store=store, driver=MemoryStack(tmp_path), runner=Stalls(), host={"name": "h1"},
                           artefacts=tmp_path / "artefacts")
    # When it runs
    execute_group(ctx, loaded, plan.groups[0].id)
    # Then its record (farm results --format json) carries what was found
    [cell] = store.cells("s")
    record = cell_record(cell)
    assert record["status"] == "done"
    assert {k: record[k] for k in ("unfinished_requests", "users_active", "users_stalled", "late_starts",
                                   "load_stalled", "load_mismatch")} == {
        "unfinished_requests": 1, "users_active": 1, "users_stalled": 1, "late_starts": 0, "load_stalled": True,
        "load_mismatch": True}
    assert record["concurrency_ratio"] == pytest.approx(50 * (0.004 + 1.8 / 100) / 2)


def test_a_stalled_point_is_never_the_faster_side_nor_the_slos_choice_and_the_answer_says_so() -> None:
    # Given a monolith that looks faster (5 ms against 30 ms) at both loads, with its users stalled at 8 users
    cells, hist = fixed({("monolith", 4): 5, ("monolith", 8): 5, ("microservices", 4): 30,
                         ("microservices", 8): 30}, reps=3)
    clean = analyse(cells, hist, slo_ms=100)
    [before] = clean.verdicts
    assert before.verdict == SLOWER  # the premise: without the flag, microservices are slower throughout
    cells["load_stalled"] = (cells["architecture"] == "monolith") & (cells["users"] == 8)
    # When the answer is computed
    found = analyse(cells, hist, slo_ms=100)
    [verdict] = found.verdicts
    # Then at 8 users the monolith is not the faster side: no significant difference there, and the verdict says
    # why; at 4 users it still is
    classes = {p.load: p.classification for p in verdict.points}
    assert classes == {4: "higher", 8: INCONCLUSIVE}
    assert verdict.verdict != SLOWER and verdict.verdict != NO_DIFFERENCE
    assert ("left out as the faster side (users stalled or late starts, or load off Little's law): monolith at 8 "
            "users") in verdict.describe()
    assert verdict.as_json()["points"][1]["stalled"] == ["monolith"]
    # And the recommendation takes microservices at 8 users, and says which point it left out
    assert [(c.users, c.architecture) for c in found.choices] == [(4, "monolith"), (8, "microservices")]
    assert found.recommendation[-1] == ("left out (users stalled or late starts, or load off Little's law: latency a "
                                        "lower bound, never meeting the SLO): monolith, none cache, 1 instance at 8 "
                                        "users")
    assert LOWER not in classes.values()


def test_a_stalled_cache_never_wins() -> None:
    # Given two caches of one architecture, the faster one with stalled users
    cells, hist = fixed({("monolith", 4): 5, ("monolith", 8): 30}, reps=3)
    cells = cells.assign(cache=["none"] * 3 + ["local"] * 3, users=4, load_stalled=[True] * 3 + [False] * 3)
    # When the caches are compared
    [compared] = analyse(cells, hist).cache_verdicts
    # Then the stalled one cannot lead, and is listed as unable to win
    [point] = compared.points
    assert point.leader == "local" and point.cannot_win == ("none",)


def test_an_unfinished_request_is_offered_load_not_achieved_load(tmp_path: Path) -> None:
    # Given an open-loop cell whose 100 counted requests include 30 that never finished in its 2 s window
    from farm.execute import _conditions

    loaded = result((OK, OK), requests=100, rps=50.0, unfinished=30)
    # Then it achieved 35 req/s, short of the 50 offered: flagged saturated, stored as achieved
    assert loaded.completed_rps == pytest.approx(35.0)
    assert _conditions(loaded, 50.0, None, None)["rate_saturated"] is True
    assert _conditions(result((OK, OK), requests=100, rps=50.0), 50.0, None, None)["rate_saturated"] is False


def test_a_flagged_cell_is_named_with_both_figures_of_littles_law() -> None:
    from farm.commands.views import flagged_line
    from farm.load.omission import load_flags

    # Given a cell of 16 users, 11 stalled, whose throughput × (R + Z) accounts for 5.2 of them
    record = {"id": "c1", "params": {"users": 16, "architecture": "monolith"}, "users_stalled": 11, "late_starts": 0,
              "unfinished_requests": 3, "concurrency_ratio": 5.2 / 16, "load_stalled": True, "load_mismatch": True}
    # Then its flags say what stalled, what did not finish, and both figures of the check
    assert load_flags(record) == ["11 users stalled", "3 unfinished requests",
                                  "Little's law: 16 users, 5.2 from throughput × (response + think time)"]
    line = flagged_line(record, ["users"])
    assert line is not None and line.plain.startswith("flagged c1 (users=16): 11 users stalled")
    # And a cell whose load held is not flagged
    assert flagged_line({**record, "load_stalled": False, "load_mismatch": False}, ["users"]) is None


def test_a_few_late_starts_do_not_flag_an_open_loop_cell_but_a_dropped_slot_does() -> None:
    # Given 200 requests of which 2 started late (1%): their latency is already measured from their slot
    few = check_load(result((OK, OK), requests=200, late=2), 2, open_loop=True)
    # Then the cell is not flagged; 3 of 100 (3%) are too many, and so is one slot the pacing gave up
    assert (few.late_starts, few.load_stalled, few.warnings) == (2, False, ())
    assert check_load(result((OK, OK), requests=100, late=3), 2, open_loop=True).load_stalled is True
    dropped = check_load(replace(result((OK, OK), requests=200), dropped_slots=4), 2, open_loop=True)
    assert dropped.load_stalled is True and dropped.late_starts == 0
    assert dropped.warnings == ("4 open-loop slots dropped: load due in the window and never offered (users more "
                                "than one interval behind their schedule, or stuck at the close)",)
    assert load_flags({"warnings": list(dropped.warnings), "late_starts": 2}) == ["2 late starts",
                                                                                  "4 open-loop slots dropped"]
    # And the statistics carry the count (absent from an older plugin's: none)
    document = {"measured_s": 2.0, "stats": [], "total": {"num_requests": 1, "num_failures": 0,
                                                           "total_response_time": 5, "response_times": {"5": 1}},
                "load": {"users": [], "unfinished_requests": 0, "late_starts": 0, "dropped_slots": 7}}
    assert parse_locust_stats(document).dropped_slots == 7


def test_a_user_spawned_just_before_the_close_is_not_stalled() -> None:
    # Given users that complete a request every 50 ms, and one spawned 40 ms before the window closed
    spawned = UserLoad(completed=0, think_s=0.0, present_s=0.04)
    check = check_load(result((OK, OK, OK, spawned)), 4, open_loop=False)
    # Then it had no time to complete one: not stalled (3 cycles, 150 ms, would have been enough)
    assert (check.users_stalled, check.load_stalled) == (0, False)
    late_stuck = UserLoad(completed=0, think_s=0.0, present_s=0.2)
    assert check_load(result((OK, OK, OK, late_stuck)), 4, open_loop=False).users_stalled == 1


def test_users_stuck_for_most_of_the_window_are_stalled_though_littles_law_holds() -> None:
    # Given 16 users of one class in a 60 s window: 8 complete 600 requests, 8 were stuck 50 s and completed 100
    well, stuck = UserLoad(600, 30.0, 60.0, "Reader"), UserLoad(100, 5.0, 60.0, "Reader")
    check = check_load(result((well,) * 8 + (stuck,) * 8, requests=5600), 16, open_loop=False)
    # Then the 8 are stalled, not active, and the cell flagged
    assert (check.users_stalled, check.users_active, check.load_stalled) == (8, 8, True)
    # But uneven healthy users are not, nor a class that is slower by design (a buyer thinking 5× longer)
    spread = tuple(UserLoad(n, 30.0, 60.0, "Reader") for n in range(450, 750, 20))
    buyers = (UserLoad(90, 50.0, 60.0, "Buyer"),) * 4
    assert check_load(result(spread + buyers, requests=9000), 19, open_loop=False).users_stalled == 0
    # Nor are users of a class whose counts are too small to compare (a healthy user may complete 1 of 3)
    small = (UserLoad(3, 1.0, 2.0, "R"),) * 4 + (UserLoad(1, 1.5, 2.0, "R"),)
    assert check_load(result(small, requests=13), 5, open_loop=False).users_stalled == 0
