"""One rule for a saturated host (configs, verdicts, recommendation): the stack's CPU set saturated alone is the
system at its limit, a result judged by its latency; the generator's set saturated too is a fault."""

from __future__ import annotations

from collections.abc import Callable

from farm.analysis.answer import analyse
from farm.analysis.configs import config_points
from farm.analysis.verdict import INCONCLUSIVE
from tests.unit.test_cost_benefit import SLO, grid
from tests.unit.test_verdicts import fixed


def _busy(generator_pct: float, wait_ms: float | None = None) -> Callable[[str, int, int], dict[str, object]]:
    """The monolith at cost 8 and 20 users on a host whose stack set was 95% busy, its generator's set as given
    (and the generator's run-queue wait per time slice, when given)."""
    def extra(arch: str, size: int, load: int) -> dict[str, object]:
        hot = arch == "monolith" and size == 2 and load == 20
        return {"host_saturated": hot, "stack_set_cpu_pct": 95.0 if hot else 50.0,
                "generator_set_cpu_pct": generator_pct if hot else 20.0, "generator_wait_ms": wait_ms}
    return extra


def test_a_stack_set_at_its_limit_is_a_result_and_may_meet_the_slo() -> None:
    # Given the monolith's cheapest configuration at 20 users on a host whose stack set was 95% busy, the
    # generator's 30%, its p95 within the SLO
    cells, hist = grid(reps=3, extra=_busy(30.0))
    # When the configurations are judged
    points = config_points(cells, hist, slo_ms=SLO)
    point = points[(points["architecture"] == "monolith") & (points["load"] == 20) & (points["cost"] == 8)].iloc[0]
    # Then it meets the SLO, with the saturation kept as a note
    assert bool(point["meets"]) and not bool(point["flagged"])
    assert point["notes"] == "host_saturated" and point["flags"] == ""


def test_a_generator_set_saturated_too_is_a_fault_that_never_meets() -> None:
    cells, hist = grid(reps=3, extra=_busy(97.0))
    points = config_points(cells, hist, slo_ms=SLO)
    point = points[(points["architecture"] == "monolith") & (points["load"] == 20) & (points["cost"] == 8)].iloc[0]
    assert not bool(point["meets"]) and point["flags"] == "generator_busy"


def test_a_busy_generator_set_that_barely_delayed_the_generator_is_no_fault_one_that_did_is() -> None:
    # Given the generator's set 97% busy, but the generator waited 0.05 ms per time slice (the work there gave way)
    cells, hist = grid(reps=3, extra=_busy(97.0, wait_ms=0.05))
    points = config_points(cells, hist, slo_ms=SLO)
    point = points[(points["architecture"] == "monolith") & (points["load"] == 20) & (points["cost"] == 8)].iloc[0]
    # Then the configuration meets the SLO (the saturation a note); waiting 2.5 ms per slice it is a fault
    assert bool(point["meets"]) and point["flags"] == ""
    cells, hist = grid(reps=3, extra=_busy(97.0, wait_ms=2.5))
    points = config_points(cells, hist, slo_ms=SLO)
    point = points[(points["architecture"] == "monolith") & (points["load"] == 20) & (points["cost"] == 8)].iloc[0]
    assert not bool(point["meets"]) and point["flags"] == "generator_busy"


def test_a_generator_that_waited_for_a_cpu_measured_itself_also_with_the_stack_on_a_sut_host() -> None:
    # Given the monolith's cheapest configuration at 20 users measured against a SUT host (no CPU sets here, so no
    # host_saturated), its generator waiting 2.5 ms per time slice
    def remote(arch: str, size: int, load: int) -> dict[str, object]:
        hot = arch == "monolith" and size == 2 and load == 20
        return {"host_saturated": None, "generator_wait_ms": 2.5 if hot else 0.1}
    cells, hist = grid(reps=3, extra=remote)
    points = config_points(cells, hist, slo_ms=SLO)
    point = points[(points["architecture"] == "monolith") & (points["load"] == 20) & (points["cost"] == 8)].iloc[0]
    # Then it cannot vouch for the configuration
    assert not bool(point["meets"]) and point["flags"] == "generator_busy"


def test_the_verdict_follows_the_same_rule() -> None:
    # Given a monolith faster than microservices (5 against 30 ms), its host saturated at 8 users
    cells, hist = fixed({("monolith", 4): 5, ("monolith", 8): 5, ("microservices", 4): 30,
                         ("microservices", 8): 30}, reps=3)
    hot = (cells["architecture"] == "monolith") & (cells["users"] == 8)
    cells = cells.assign(host_saturated=hot, stack_set_cpu_pct=95.0, generator_set_cpu_pct=30.0)
    # Then with only the stack's set busy the monolith still wins there (a result)
    [verdict] = analyse(cells, hist).verdicts
    assert {p.load: p.classification for p in verdict.points} == {4: "higher", 8: "higher"}
    # And with the generator's set busy too it cannot (a fault), and the point says so
    [verdict] = analyse(cells.assign(generator_set_cpu_pct=96.0), hist).verdicts
    assert {p.load: p.classification for p in verdict.points} == {4: "higher", 8: INCONCLUSIVE}
    assert verdict.points[1].saturated == ("monolith",)
