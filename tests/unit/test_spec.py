"""Sweep files: valid ones load into a frozen model; each bad one gives one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from farm.durations import format_duration, parse_duration
from farm.errors import SpecError
from farm.spec import SweepSpec, load_sweep, parse_sweep
from tests.conftest import ROOT

GOOD = """
name: quickstart
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local, shared]
  instances: [1]
  users: [5, 25]
exclude: [{architecture: microservices, cache: none}]
load: {spawn_rate: 10, duration: 15s, warmup: 5s}
repetitions: 1
slo: {p95_ms: 200, max_error_ratio: 0.01}
"""


def parse(text: str) -> SweepSpec:
    return parse_sweep(text, source="sweep.yaml", base=ROOT).spec


def test_the_issue_example_loads_with_durations_in_seconds() -> None:
    spec = parse(GOOD)
    assert spec.load.duration == 15.0 and spec.load.warmup == 5.0
    assert spec.matrix["cache"] == ["none", "local", "shared"]
    assert spec.slo is not None and spec.slo.p95_ms == 200


def test_the_spec_is_frozen_and_its_fingerprint_ignores_formatting() -> None:
    spec = parse(GOOD)
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]
    reformatted = GOOD.replace("load: {spawn_rate: 10, duration: 15s, warmup: 5s}",
                               "load:\n  warmup: 5\n  duration: 15\n  spawn_rate: 10.0")
    assert parse(reformatted).fingerprint() == spec.fingerprint()
    assert parse(GOOD.replace("users: [5, 25]", "users: [5, 30]")).fingerprint() != spec.fingerprint()


def test_instances_default_to_one() -> None:
    spec = parse("name: a\nstack: shop\nmatrix: {users: [1]}\n")
    assert spec.matrix["instances"] == [1]


@pytest.mark.parametrize(("change", "expected"), [
    (("name: quickstart", "name: quickstart\ncolour: red"), "colour: unknown key; allowed keys here: name, stack"),
    (("users: [5, 25]", "users: []"), "matrix: 'users' is an empty list"),
    (("users: [5, 25]", "users: [5, many]"), "matrix: 'users' values must be whole numbers"),
    (("cache: [none, local, shared]", "cache: [none, redis]"),
     "matrix.cache[1]: 'redis' is not allowed for stack 'shop'; allowed: none, local, shared"),
    (("instances: [1]", "instances: [1]\n  colour: [red]"), "matrix.colour: stack 'shop' has no parameter 'colour'"),
    (("duration: 15s", "duration: 15 parsecs"), "load.duration: '15 parsecs' is not a duration"),
    (("warmup: 5s", "warmpu: 5s"), "load.warmpu: unknown key; allowed keys here: spawn_rate, duration, warmup"),
    (("stack: shop", "stack: nosuchstack"), "stack: stack 'nosuchstack' not found"),
    (("repetitions: 1", "repetitions: zero"), "repetitions: Input should be a valid integer"),
    (("stack: shop\n", ""), "stack: required but missing"),
    (("exclude: [{architecture: microservices, cache: none}]", "exclude: [{cache: redis}]"),
     "exclude[0].cache: 'redis' is not in matrix.cache"),
    (("name: quickstart", "name: 'bad name!'"), "name: use letters, digits"),
])
def test_each_bad_sweep_names_the_file_and_the_field(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    with pytest.raises(SpecError) as info:
        parse(GOOD.replace(old, new))
    message = str(info.value)
    assert message.startswith("sweep.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(SpecError, match=r"sweep.yaml: line \d+: not valid YAML"):
        parse("name: a\nmatrix: {users: [1]\n")


def test_a_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read the sweep file"):
        load_sweep(tmp_path / "absent.yaml")


def test_the_shipped_examples_are_valid() -> None:
    for path in (ROOT / "examples").glob("*.yaml"):
        assert load_sweep(path).spec.name


@pytest.mark.parametrize(("text", "seconds"), [("15s", 15), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25),
                                               (7, 7), ("1.5", 1.5), ("1m30s", 90)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "10 parsecs", "-5", "5x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 125, 7260)] == ["5s", "2m05s", "2h01m"]
