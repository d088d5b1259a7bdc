"""Issue 9 item 6: a sweep whose ramp to its largest users level does not fit in its warm-up is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.spec import parse_sweep
from tests.conftest import ROOT, farm

SWEEP = "name: ramp\nstack: shop\nmatrix: {{users: [5, {users}]}}\nload: {{spawn_rate: {rate}, warmup: {warmup}}}\n"
REFUSAL = ("sweep.yaml: load.warmup: warm-up 4s is shorter than the ramp of 80 users at 10/s (8s); "
           "raise load.warmup or load.spawn_rate")


def test_a_ramp_longer_than_the_warmup_is_refused_in_one_line() -> None:
    # Given 80 users started at 10 per second (8 s) and a 4 s warm-up
    text = SWEEP.format(users=80, rate=10, warmup="4s")
    # When the sweep is read, Then it is refused with the numbers and what to change
    with pytest.raises(SpecError) as refused:
        parse_sweep(text, source="sweep.yaml", base=ROOT)
    assert str(refused.value) == REFUSAL


@pytest.mark.parametrize(("users", "rate", "warmup"), [(80, 10, "8s"), (80, 20, "4s"), (40, 10, "5s")])
def test_a_ramp_that_fits_in_the_warmup_is_accepted(users: int, rate: float, warmup: str) -> None:
    # Given a ramp no longer than the warm-up, When the sweep is read, Then it loads
    loaded = parse_sweep(SWEEP.format(users=users, rate=rate, warmup=warmup), source="sweep.yaml", base=ROOT)
    assert loaded.spec.matrix["users"] == [5, users]


def test_a_fractional_ramp_names_its_fraction() -> None:
    # Given 2 users at 10/s and no warm-up at all
    with pytest.raises(SpecError) as refused:
        parse_sweep(SWEEP.format(users=2, rate=10, warmup="0s"), source="s.yaml", base=ROOT)
    # Then the 0.2 s ramp is named, not rounded away
    assert "warm-up 0s is shorter than the ramp of 5 users at 10/s (0.5s)" in str(refused.value)


def test_farm_run_refuses_it_with_exit_code_2_and_one_line(tmp_path: Path) -> None:
    # Given the refused sweep as a file
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.format(users=80, rate=10, warmup="4s"))
    # When `farm run` is given it
    result = farm("run", str(sweep), cwd=tmp_path, timeout=60)
    # Then it exits 2 with the refusal on one line, and nothing ran
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "shorter than the ramp of 80 users at 10/s (8s)" in lines[0], result.stderr


def test_a_sweep_already_accepted_stays_readable() -> None:
    # Given a sweep accepted before the rule (a worker reads it with no cell limit)
    text = SWEEP.format(users=80, rate=10, warmup="4s")
    # When it is read as an accepted sweep, Then it loads
    loaded = parse_sweep(text, source="sweep 'ramp'", base=ROOT, max_cells=None)
    assert loaded.spec.load.warmup == 4.0
