"""The SUT's resource use over a window, from two samples of the host's cgroup files and /proc/stat."""

from __future__ import annotations

from farm.stacks.resources import parse_sample, window

BEFORE = """container shop-app-1 1000000 52428800
container shop-balancer-1 - -
host 100.0 2 1000 4000
"""
AFTER = """container shop-app-1 3000000 104857600
container shop-balancer-1 - -
host 104.0 2 1600 4800
"""


def test_cpu_per_container_and_host_over_the_window() -> None:
    used = window(parse_sample(BEFORE), parse_sample(AFTER))
    assert used is not None
    # 2 s of CPU in a 4 s window on 2 cores: 25% of the host's cores; the host was busy 600 of 800 jiffies
    assert used["services"]["shop-app-1"] == {"cpu_s": 2.0, "cpu_pct": 25.0, "memory_peak_mb": 100.0}
    assert used["host_cpu_pct"] == 75.0 and used["saturated"] is False and used["cpu_s"] == 2.0
    # And a container whose cgroups the host does not expose is unknown, never zero
    assert used["services"]["shop-balancer-1"] == {"cpu_s": None, "cpu_pct": None, "memory_peak_mb": None}


def test_a_host_at_90_percent_or_more_is_saturated_and_a_broken_sample_gives_no_window() -> None:
    busy = AFTER.replace("host 104.0 2 1600 4800", "host 104.0 2 1750 4800")
    used = window(parse_sample(BEFORE), parse_sample(busy))
    assert used is not None and used["host_cpu_pct"] == 93.8 and used["saturated"] is True
    assert window(parse_sample(BEFORE), parse_sample("garbage")) is None
