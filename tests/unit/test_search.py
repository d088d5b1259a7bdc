"""The capacity search, driven to its end against a model whose cheapest configurations are known in closed form."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from farm.errors import SpecError
from farm.plan import expand
from farm.search import BLOCKED, BUDGET, MEETS, WAITING, Step, next_step, probe_groups
from farm.spec import LoadedSweep, parse_sweep
from farm.stacks.scaling import declared_cost, replicas_of

ROOT = Path(__file__).resolve().parents[2]
SLO = 45
DEMAND = {"catalog": 6.0, "pricing": 2.0, "cart": 1.0, "gateway": 3.0}  # CPU ms per request, microservices
MONOLITH_MS = 14.0  # the monolith's, per request (its in-process calls are cheaper than hops, its work the same)
BALANCER_MS = 1.0


def sweep(max_cost: float = 16, repetitions: int = 3, loads: str = "[10, 40, 80]") -> LoadedSweep:
    text = (f"name: search\nstack: shop\nmatrix:\n  architecture: [monolith, microservices]\n  cache: [none]\n"
            f"  users: {loads}\nload: {{spawn_rate: 100, warmup: 2s, duration: 5s}}\nrepetitions: {repetitions}\n"
            f"slo: {{p95_ms: {SLO}}}\nsearch: {{max_cost: {max_cost}}}\n")
    return parse_sweep(text, source="search.yaml", base=ROOT)


def utilisation(loaded: LoadedSweep, params: dict[str, Any]) -> dict[str, float]:
    """Each scalable service's busy share of its capacity (replicas × cores per replica) at 5 requests/s a user."""
    rate = 5.0 * int(params["users"])
    _cost, breakdown = declared_cost(loaded.manifest, params)
    demand = {"app": MONOLITH_MS} if params["architecture"] == "monolith" else DEMAND
    return {s: rate * demand[s] / 1000.0 / breakdown[s]["cost"] for s in breakdown}


def p95(loaded: LoadedSweep, params: dict[str, Any]) -> int:
    """The model's p95: 10 ms + 50 ms × the busiest service's utilisation, in Locust's 1 ms buckets."""
    return round(10 + 50 * max(utilisation(loaded, params).values()))


def measure(loaded: LoadedSweep, record: dict[str, Any], hist: list[dict[str, Any]]) -> None:
    """Fill a pending record in as the worker would: the model's p95, its declared cost and CPU breakdown."""
    params = record["params"]
    ms = p95(loaded, params)
    cost, breakdown = declared_cost(loaded.manifest, params)
    demand = {"app": MONOLITH_MS} if params["architecture"] == "monolith" else DEMAND
    total = sum(demand.values()) + BALANCER_MS
    entries = {s: {**b, "scalable": True, "cpu_share": demand[s] / total} for s, b in breakdown.items()}
    entries["balancer"] = {"replicas": 1, "scalable": False, "cpu_share": BALANCER_MS / total}
    record.update(status="done", requests=500, failures=0, rps=10.0, p50_ms=float(ms), p95_ms=float(ms),
                  p99_ms=float(ms), cost=cost, cost_breakdown=entries)
    hist.append({"cell_id": record["id"], "ms": ms, "count": 500})


def pending(cell: Any, probe: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": cell.id, "status": "pending", "params": dict(cell.params), "repetition": cell.repetition,
            "host": "h1", "generator_saturated": False, "requests": None, "failures": None, "rps": None,
            "p50_ms": None, "p95_ms": None, "p99_ms": None, "cache_hits": None, "cache_misses": None,
            "cost": None, "cost_breakdown": None, "probe": probe}


def first_step(loaded: LoadedSweep, measured: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The plan's cells as step 0's pending records, the first ``measured`` of them (all by default) measured:
    (records, histogram rows)."""
    records = [pending(c, {"step": 0}) for c in expand(loaded.spec, loaded.manifest).cells]
    hist: list[dict[str, Any]] = []
    for r in records[:measured]:
        measure(loaded, r, hist)
    return records, hist


def run_search(loaded: LoadedSweep, rounds: int = 60) -> tuple[Step, list[dict[str, Any]], int]:
    """Measure the plan, then every step's probes, until the search has none left: (last step, cells, groups)."""
    records, hist = first_step(loaded, measured=0)
    groups = len(expand(loaded.spec, loaded.manifest).groups)
    for _ in range(rounds):
        for r in records:
            if r["status"] == "pending":
                measure(loaded, r, hist)
        step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
        if not step.probes:
            return step, records, groups
        new, why = probe_groups(loaded.spec, step.probes)
        groups += len(new)
        records += [pending(c, why[c.id]) for g in new for c in g.cells]
    raise AssertionError("the search did not end")


def cheapest(loaded: LoadedSweep, architecture: str, users: int, max_cost: float) -> float | None:
    """The closed form: the cheapest replica counts (1–6 each) whose p95 + half a bucket is within the SLO."""
    services = ["app"] if architecture == "monolith" else list(DEMAND)
    best = None
    for counts in itertools.product(range(1, 7), repeat=len(services)):
        params = {**loaded.manifest.defaults(), "architecture": architecture, "cache": "none", "users": users,
                  **({"instances": counts[0]} if architecture == "monolith" else
                     {"instances": 1, **{f"replicas.{s}": n for s, n in zip(services, counts, strict=True)}})}
        cost = declared_cost(loaded.manifest, params)[0]
        if cost is not None and cost <= max_cost and p95(loaded, params) + 0.5 <= SLO:
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("max_cost", [16, 8])
def test_the_search_finds_the_closed_forms_cheapest_configuration_at_every_load(max_cost: float) -> None:
    # Given a sweep that searches both architectures at three loads against p95 <= 45 ms
    loaded = sweep(max_cost=max_cost)
    # When its probes are measured step by step until it has none left
    step, records, _groups = run_search(loaded)
    # Then every trajectory ends at the closed form's cheapest configuration, or at the budget when it is dearer
    assert step.done
    for outcome in step.outcomes:
        base, users = outcome.trajectory
        architecture = "monolith" if '"monolith"' in base else "microservices"
        known = cheapest(loaded, architecture, int(users), max_cost)
        if known is None:
            assert outcome.state == BUDGET and f"max_cost {max_cost:g}" in outcome.text
        else:
            assert outcome.state == MEETS, outcome.text
            assert outcome.text.endswith(f"at cost {known:g}")
    # And every cell measured says why: step 0, then each step's reason
    assert all(r["probe"] is not None for r in records)
    assert max(r["probe"]["step"] for r in records) >= 2


def test_the_bottleneck_is_the_most_pressed_service_and_the_reason_says_so() -> None:
    # Given the first measurement of microservices at 80 users: catalog at 2.4 of its 1 core
    loaded = sweep()
    _step, records, _groups = run_search(loaded)
    first = [r for r in records if r["probe"]["step"] == 1 and r["params"]["architecture"] == "microservices"
             and r["params"]["users"] == 80]
    # Then its first step adds a catalog replica, and the stored reason names the p95, the service and its share
    assert first and all(r["params"].get("replicas.catalog") == 2 for r in first)
    why = first[0]["probe"]
    assert why["scaled"] == "catalog" and why["from"]["catalog"] == 1 and why["cost"] == 5
    assert "over 45 ms" in why["why"] and "one more catalog replica" in why["why"]
    assert why["shares"]["catalog"] > why["shares"]["gateway"] > why["shares"]["pricing"]
    # And the monolith scales by instances, whole instances at a time
    mono = [r for r in records if r["params"]["architecture"] == "monolith" and r["params"]["users"] == 80]
    assert sorted({r["params"]["instances"] for r in mono}) == [1, 2, 3]


def test_the_search_needs_far_fewer_cells_than_the_grid_it_replaces() -> None:
    # Given the grid that would give the same answer: monolith 1–3 instances, microservices 1–4 catalog,
    # 1–2 of each other service (the closed form's ranges), three loads, three repetitions
    loaded = sweep()
    grid = (3 + 4 * 2 * 2 * 2) * 3 * 3
    # When the search runs
    _step, records, _groups = run_search(loaded)
    # Then it measured at most 40% of the grid's cells
    assert len(records) <= 0.4 * grid, (len(records), grid)


def test_a_trajectory_waits_for_every_repetition_of_its_latest_configuration() -> None:
    loaded = sweep()
    records, hist = first_step(loaded, measured=-1)
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    states = {o.trajectory: o.state for o in step.outcomes}
    assert WAITING in states.values() and not step.done
    last = records[-1]["params"]
    assert sum(1 for o in step.outcomes if o.state == WAITING) == 1
    assert all(o.probe is None for o in step.outcomes if o.trajectory[1] == last["users"] and o.state == WAITING)


def test_a_failed_probe_blocks_its_trajectory_until_the_sweep_runs_again() -> None:
    loaded = sweep(repetitions=1)
    records, hist = first_step(loaded)
    records[0]["status"] = "failed"
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    blocked = [o for o in step.outcomes if o.state == BLOCKED]
    assert len(blocked) == 1 and "run the sweep again" in blocked[0].text


def test_one_repetition_judges_by_the_estimate_and_says_it_is_indicative() -> None:
    loaded = sweep(repetitions=1)
    step, records, _ = run_search(loaded)
    assert step.done and any("indicative" in r["probe"].get("why", "") for r in records if r["probe"]["step"])


def test_probe_groups_share_a_provisioning_per_configuration_and_repetition_with_stable_ids() -> None:
    # Given the first step of a search of three repetitions
    loaded = sweep()
    records, hist = first_step(loaded)
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    # When its probes are grouped twice
    groups, why = probe_groups(loaded.spec, step.probes)
    again, _ = probe_groups(loaded.spec, next_step(records, pd.DataFrame(hist), loaded.spec,
                                                    loaded.manifest).probes)
    # Then each group is one configuration in one repetition, holding every load that probes it, ids unchanged
    assert [g.id for g in groups] == [g.id for g in again]
    for g in groups:
        assert len({c.repetition for c in g.cells}) == 1
        assert len({tuple(sorted((k, str(v)) for k, v in c.stack_params().items())) for c in g.cells}) == 1
        assert all(why[c.id]["step"] == 1 for c in g.cells)
    assert len({c.id for g in groups for c in g.cells}) == sum(len(g.cells) for g in groups)


def test_replicas_in_the_matrix_or_no_slo_latency_are_refused_with_a_search() -> None:
    base = ("name: s\nstack: shop\nmatrix:\n  architecture: [monolith, microservices]\n  users: [10]\n{extra}"
            "load: {{spawn_rate: 100, warmup: 2s, duration: 5s}}\n{slo}search: {{max_cost: {cost}}}\n")
    with pytest.raises(SpecError, match="search: needs an SLO latency"):
        parse_sweep(base.format(extra="", slo="", cost=16), source="s.yaml", base=ROOT)
    with pytest.raises(SpecError, match=r"matrix.replicas.catalog: the capacity search chooses the replicas"):
        parse_sweep(base.format(extra="  replicas.catalog: [1, 2]\n", slo="slo: {p95_ms: 40}\n", cost=16),
                    source="s.yaml", base=ROOT)
    with pytest.raises(SpecError, match=r"matrix.instances: the capacity search chooses"):
        parse_sweep(base.format(extra="  instances: [1, 2]\n", slo="slo: {p95_ms: 40}\n", cost=16),
                    source="s.yaml", base=ROOT)
    with pytest.raises(SpecError, match=r"search.max_cost: 3 is below the cost of the smallest monolith "
                                        r"configuration \(4 cores\)"):
        parse_sweep(base.format(extra="", slo="slo: {p95_ms: 40}\n", cost=3), source="s.yaml", base=ROOT)
    with pytest.raises(SpecError, match=r"search.max_cost: Input should be greater than 0"):
        parse_sweep(base.format(extra="", slo="slo: {p95_ms: 40}\n", cost=0), source="s.yaml", base=ROOT)


def test_a_search_keeps_the_fingerprint_of_sweeps_without_one() -> None:
    loaded = sweep()
    plain = parse_sweep(loaded.text.replace("search: {max_cost: 16}\n", ""), source="s.yaml", base=ROOT)
    assert "search" not in json_keys(plain) and plain.spec.fingerprint() != loaded.spec.fingerprint()
    assert math.isfinite(replicas_of(loaded.manifest, {"architecture": "monolith"})["app"])


def json_keys(loaded: LoadedSweep) -> set[str]:
    data = loaded.spec.model_dump(mode="json")
    return {k for k, v in data.items() if v is not None}


def test_a_flagged_configuration_within_the_slo_is_scaled_on_and_the_reason_says_why() -> None:
    # Given microservices at 10 users within the SLO, but on a host saturated on the generator's side too
    loaded = sweep(repetitions=1)
    records, hist = first_step(loaded)
    for r in records:
        r["host_saturated"] = r["params"]["architecture"] == "microservices" and r["params"]["users"] == 10
        r["stack_set_cpu_pct"], r["generator_set_cpu_pct"] = 95.0, 97.0 if r["host_saturated"] else 20.0
    # When the search decides its next step
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    # Then that configuration does not meet the SLO, and the reason names the flag
    [flagged] = [o for o in step.outcomes if o.trajectory[1] == 10 and '"microservices"' in o.trajectory[0]]
    assert flagged.probe is not None and "within 45 ms but flagged (generator_busy)" in flagged.text
    assert all(o.state == MEETS for o in step.outcomes if o.trajectory[1] == 10 and o is not flagged)


def test_a_stack_set_at_its_limit_within_the_slo_meets_it() -> None:
    # Given every configuration on a host whose stack set was 95% busy (the system at its limit), the generator's not
    loaded = sweep(repetitions=1)
    records, hist = first_step(loaded)
    for r in records:
        r["host_saturated"], r["stack_set_cpu_pct"], r["generator_set_cpu_pct"] = True, 95.0, 20.0
    # Then the search stops where the latency meets the SLO, as without the flag
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    assert all(o.state == MEETS for o in step.outcomes if o.trajectory[1] == 10)


def test_the_search_never_stops_on_an_estimate_when_repetitions_were_excluded() -> None:
    # Given three repetitions asked for, and two of the monolith's at 10 users excluded (the generator saturated)
    loaded = sweep(repetitions=3)
    records, hist = first_step(loaded)
    for r in records:
        r["generator_saturated"] = (r["params"]["architecture"] == "monolith" and r["params"]["users"] == 10
                                    and r["repetition"] > 1)
    # When the search decides its next step
    step = next_step(records, pd.DataFrame(hist), loaded.spec, loaded.manifest)
    # Then that trajectory, within the SLO by its one usable estimate, is blocked, not done; the others meet it
    [mono] = [o for o in step.outcomes if o.trajectory[1] == 10 and '"monolith"' in o.trajectory[0]]
    assert mono.state == BLOCKED and mono.probe is None
    assert "only 1 of 3 repetitions usable" in mono.text
    assert all(o.state == MEETS for o in step.outcomes if o.trajectory[1] == 10 and o is not mono)
