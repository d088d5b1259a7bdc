"""Planning: product − excludes × repetitions, grouped by stack configuration, ascending users."""

from __future__ import annotations

from farm.plan import expand, refinement
from farm.spec import parse_sweep
from tests.conftest import ROOT

SWEEP = """
name: p
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local, shared]
  instances: [1, 2]
  users: [25, 5, 50]
exclude: [{architecture: microservices, cache: none}]
repetitions: 2
"""


def plan(text: str = SWEEP):
    loaded = parse_sweep(text, source="s.yaml", base=ROOT)
    return expand(loaded.spec, loaded.manifest)


def test_cells_are_the_product_minus_excludes_times_repetitions() -> None:
    result = plan()
    # 2 architectures × 3 caches − 1 excluded pair = 5 configurations, × 2 instances × 3 users × 2 reps
    assert len(result.cells) == 5 * 2 * 3 * 2
    assert not any(c.params["architecture"] == "microservices" and c.params["cache"] == "none"
                   for c in result.cells)


def test_without_reprovision_a_group_is_one_stack_configuration_in_ascending_users_per_repetition() -> None:
    result = plan(SWEEP + "reprovision: false\n")
    assert len(result.groups) == 10
    for group in result.groups:
        assert {frozenset(c.stack_params().items()) for c in group.cells} == {frozenset(group.config.items())}
        assert [(c.repetition, c.users) for c in group.cells] == [(1, 5), (1, 25), (1, 50), (2, 5), (2, 25), (2, 50)]


def test_by_default_a_group_is_one_stack_configuration_in_one_repetition() -> None:
    # Given a sweep with 2 repetitions and no reprovision field; When planned
    result = plan()
    # Then every configuration has one group (one provisioning) per repetition, ascending users within it
    assert len(result.groups) == 10 * 2
    for group in result.groups:
        assert {frozenset(c.stack_params().items()) for c in group.cells} == {frozenset(group.config.items())}
        assert len({c.repetition for c in group.cells}) == 1
        assert [c.users for c in group.cells] == [5, 25, 50]
    per_config: dict[str, list[int]] = {}
    for group in result.groups:
        per_config.setdefault(repr(sorted(group.config.items())), []).append(group.cells[0].repetition)
    assert all(sorted(reps) == [1, 2] for reps in per_config.values())


def test_cells_carry_every_stack_parameter_with_defaults() -> None:
    cell = plan().cells[0]
    assert {"architecture", "cache", "cache_size", "cache_ttl", "work_ms", "checkout_ms", "instances",
            "users"} <= set(cell.params)


def test_ids_are_deterministic_and_unique() -> None:
    first, second = plan(), plan()
    assert [c.id for c in first.cells] == [c.id for c in second.cells]
    assert len({c.id for c in first.cells}) == len(first.cells)
    assert [g.id for g in first.groups] == [g.id for g in second.groups]


def test_architectures_of_one_configuration_run_next_to_each_other() -> None:
    configs = [g.config for g in plan(SWEEP + "reprovision: false\n").groups]
    for a, b in zip(configs[::2], configs[1::2], strict=True):
        assert {a["architecture"], b["architecture"]} in ({"monolith", "microservices"}, {"monolith"},
                                                          {"microservices"})
        if a["architecture"] != b["architecture"]:
            assert (a["cache"], a["instances"]) == (b["cache"], b["instances"])


def test_a_partial_exclude_matches_every_cell_it_names() -> None:
    result = plan(SWEEP.replace("exclude: [{architecture: microservices, cache: none}]", "exclude: [{users: 50}]"))
    assert {c.users for c in result.cells} == {5, 25}


def test_refinement_adds_loads_inside_each_bracket_for_both_architectures() -> None:
    # Given a plan and a crossover for cache=local, 1 instance between 25 and 50 users
    result = plan()
    groups = {g.id: g.config for g in result.groups}
    # When refined with two points
    cells = refinement("p", groups, [({"cache": "local", "instances": 1}, 25, 50)], repetitions=2, points=2)
    # Then both architectures get the loads in between, for every repetition, with plan-compatible ids
    assert {c.users for c in cells} == {33, 42}
    assert {c.params["architecture"] for c in cells} == {"monolith", "microservices"}
    assert {(c.params["cache"], c.params["instances"]) for c in cells} == {("local", 1)}
    assert len(cells) == 2 * 2 * 2
    assert {c.repetition for c in cells} == {1, 2}
    same = refinement("p", groups, [({"cache": "local", "instances": 1}, 25, 50)], repetitions=2, points=2)
    assert [c.id for c in same] == [c.id for c in cells]
