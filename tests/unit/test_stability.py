"""When a warm-up until stable ends: settled request rate and hit ratio over the last intervals, after the ramp."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.load.stability import Settling
from farm.spec import parse_sweep
from tests.conftest import ROOT


def feed(settling: Settling, readings: Sequence[tuple[int | None, int | None, int | None]]) -> list[bool]:
    """One reading per second; the answers."""
    return [settling.add(float(t), r, h, m) for t, (r, h, m) in enumerate(readings)]


def test_a_steady_rate_without_a_cache_settles_after_three_intervals() -> None:
    # Given 100 requests a second from the start
    answers = feed(Settling(earliest=0.0), [(100 * t, None, None) for t in range(6)])
    # Then it settles at the fourth reading (three equal intervals), not before
    assert answers == [False, False, False, True, True, True]


def test_nothing_settles_before_the_ramp_ends_or_while_the_rate_grows() -> None:
    # Given a rate that doubles every second up to 80/s, reached in the interval 3-4
    totals = [0, 10, 30, 70, 150, 230, 310, 390]
    answers = feed(Settling(earliest=0.0), [(n, None, None) for n in totals])
    assert answers.index(True) == 6  # the intervals 3-4, 4-5, 5-6 are the first three equal ones
    # And a steady rate before the ramp's end does not count
    late = feed(Settling(earliest=5.0), [(100 * t, None, None) for t in range(9)])
    assert late.index(True) == 8


def test_a_warming_cache_holds_the_warmup_until_its_hit_ratio_settles() -> None:
    # Given a steady rate whose hit ratio climbs 0.2, 0.4, 0.6, 0.8, then holds at 0.8
    hits = [0, 20, 60, 120, 200, 280, 360, 440]
    readings = [(100 * t, hits[t], 100 * t - hits[t]) for t in range(8)]
    answers = feed(Settling(earliest=0.0), readings)
    # Then it settles only once three intervals share the ratio (3-4, 4-5, 5-6)
    assert answers.index(True) == 6


def test_a_stack_that_counts_no_request_never_settles() -> None:
    assert not any(feed(Settling(earliest=0.0), [(None, None, None)] * 8))


SWEEP = "name: s\nstack: shop\nmatrix: {{users: [2]}}\nload: {{duration: 2s, warmup: {warmup}}}\n"


def test_the_sweep_says_warmup_until_stable_with_a_max() -> None:
    # Given `warmup: {until_stable: true, max: 30s}`, Then the max is the warm-up and the mode is on
    load = parse_sweep(SWEEP.format(warmup="{until_stable: true, max: 30s}"), source="s.yaml", base=ROOT).spec.load
    assert load.warmup == 30.0 and load.warmup_until_stable
    # And without a max it is 60 s; a plain duration is a fixed warm-up, as before, with the same fingerprint form
    assert parse_sweep(SWEEP.format(warmup="{until_stable: true}"), source="s.yaml",
                       base=ROOT).spec.load.warmup == 60.0
    fixed = parse_sweep(SWEEP.format(warmup="5s"), source="s.yaml", base=ROOT).spec
    assert not fixed.load.warmup_until_stable and "warmup_until_stable" not in fixed.model_dump()["load"]


@pytest.mark.parametrize(("warmup", "message"), [
    ("{until_stable: yes please}", "s.yaml: load: warmup.until_stable: must be true or false"),
    ("{until: true}", "s.yaml: load: warmup: unknown key 'until'; allowed keys here: until_stable, max"),
])
def test_a_bad_warmup_mapping_is_one_line(warmup: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as refused:
        parse_sweep(SWEEP.format(warmup=warmup), source="s.yaml", base=ROOT)
    assert str(refused.value) == message
