"""Independent repetitions: a provisioning per repetition, architectures alternating, repetitions shuffled."""

from __future__ import annotations

import itertools

import pytest

from farm.errors import SpecError
from farm.plan import Plan, expand, group_id, plan_seed, refinement
from farm.spec import parse_sweep
from scheduler.placement import units
from tests.conftest import ROOT

SWEEP = """
name: reps
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [local, shared]
  users: [5, 25]
repetitions: 6
"""


def loaded(text: str = SWEEP):
    return parse_sweep(text, source="s.yaml", base=ROOT)


def plan(text: str = SWEEP) -> Plan:
    sweep = loaded(text)
    return expand(sweep.spec, sweep.manifest)


def runs(result: Plan) -> list[tuple[str, str, int]]:
    """(cache, architecture, repetition) of every group, in run order."""
    return [(str(g.config["cache"]), str(g.config["architecture"]), g.cells[0].repetition) for g in result.groups]


def test_each_repetition_of_a_pair_runs_both_architectures_back_to_back_and_the_first_alternates() -> None:
    # Given 2 caches × 2 architectures × 6 repetitions; When planned
    order = runs(plan())
    # Then per cache the 12 groups come as 6 back-to-back pairs, one repetition each, both architectures,
    # and the architecture that runs first alternates from pair to pair (A B, B A, A B …)
    for cache in ("local", "shared"):
        mine = [o for o in order if o[0] == cache]
        pairs = [mine[i:i + 2] for i in range(0, len(mine), 2)]
        assert len(pairs) == 6
        assert all(a[2] == b[2] and {a[1], b[1]} == {"monolith", "microservices"} for a, b in pairs)
        firsts = [a[1] for a, _b in pairs]
        assert all(x != y for x, y in itertools.pairwise(firsts))
        assert sorted(a[2] for a, _b in pairs) == [1, 2, 3, 4, 5, 6]
    # and a cache's pairs are contiguous (a partial sweep is still comparable)
    assert [o[0] for o in order] == ["local"] * 12 + ["shared"] * 12


def test_repetitions_are_shuffled_by_a_recorded_seed() -> None:
    # Given the default seed (from the name); When planned twice
    first, second = plan(), plan()
    # Then the order is the same, the seed is recorded, and it is not simply 1, 2, 3 …
    assert runs(first) == runs(second) and first.seed == second.seed == plan_seed(loaded().spec)
    reps = [o[2] for o in runs(first) if o[0] == "local"][::2]
    assert reps != sorted(reps)
    # When another seed is given, Then the order changes, the cells do not
    other = plan(SWEEP + "seed: 7\n")
    assert other.seed == 7
    assert runs(other) != runs(first)
    assert sorted(c.id for c in other.cells) == sorted(c.id for c in first.cells)
    # and another name derives another seed
    assert plan(SWEEP.replace("name: reps", "name: reps2")).seed != first.seed


def test_cell_ids_do_not_depend_on_reprovision_and_old_sweeps_keep_their_fingerprint() -> None:
    # Given the same sweep planned per repetition (default) and with one provisioning (reprovision: false)
    fresh, once = plan(), plan(SWEEP + "reprovision: false\n")
    # Then the cells are the same; only their grouping differs
    assert {c.id for c in fresh.cells} == {c.id for c in once.cells}
    assert len(once.groups) == 4 and len(fresh.groups) == 4 * 6
    assert [g.id for g in once.groups] == [group_id("reps", g.config) for g in once.groups]
    # and a sweep without the new fields hashes as it did before they existed (a stored sweep resumes)
    assert loaded().spec.fingerprint() == loaded(SWEEP + "reprovision: null\n").spec.fingerprint()
    assert loaded().spec.fingerprint() != loaded(SWEEP + "reprovision: false\n").spec.fingerprint()


def test_the_fingerprint_of_a_sweep_stored_before_reprovision_is_unchanged() -> None:
    # Given the spec of tests/unit/test_plan.py, whose fingerprint was taken before reprovision and seed existed
    from tests.unit.test_plan import SWEEP as OLD
    # Then it is still the same
    assert loaded(OLD).spec.fingerprint() == "53f1bd50ecc5280cbe9d6cab2aea9c7ebdf5f28063928128c5cd53616a7aee79"


def test_one_repetition_plans_as_before() -> None:
    # Given one repetition, Then one group per configuration with the grouping's old ids
    text = SWEEP.replace("repetitions: 6", "repetitions: 1")
    assert [(g.id, [c.id for c in g.cells]) for g in plan(text).groups] == \
        [(g.id, [c.id for c in g.cells]) for g in plan(text + "reprovision: false\n").groups]


@pytest.mark.parametrize("bad", ["seed: -1", "seed: abc", "reprovision: maybe"])
def test_a_bad_seed_or_reprovision_is_a_spec_error(bad: str) -> None:
    with pytest.raises(SpecError):
        loaded(SWEEP + bad + "\n")


def test_placement_sends_every_repetition_of_a_pair_to_one_host_in_plan_order() -> None:
    # Given the per-repetition plan; When placed over two workers
    result = plan()
    placed = units([(g.id, g.config) for g in result.groups], ["w1", "w2"])
    # Then one unit per cache, holding both architectures of every repetition, in the plan's interleaved order
    assert len(placed) == 2
    for unit in placed:
        assert list(unit.group_ids) == [g.id for g in result.groups if g.config["cache"] == unit.label["cache"]]
    assert placed[0].queue != placed[1].queue


def test_refinement_adds_each_repetitions_cells_to_that_repetitions_group() -> None:
    # Given a per-repetition plan and a bracket for cache=local between 5 and 25 users
    result = plan()
    groups = {g.id: g.config for g in result.groups}
    cells = refinement("reps", groups, [({"cache": "local"}, 5, 25)], repetitions=6, points=1)
    # Then every local group gets its own repetition's cell (no duplicates), ids as a plan would give them
    rep_of = {g.id: g.cells[0].repetition for g in result.groups}
    assert len(cells) == 2 * 6 and len({c.id for c in cells}) == 12
    assert all(c.repetition == rep_of[c.group_id] and c.users == 15 for c in cells)
    # and with one group for all repetitions, that group gets them all
    once = plan(SWEEP + "reprovision: false\n")
    old = refinement("reps", {g.id: g.config for g in once.groups}, [({"cache": "local"}, 5, 25)], 6, 1)
    assert {c.id for c in old} == {c.id for c in cells}
    assert len({c.group_id for c in old}) == 2
