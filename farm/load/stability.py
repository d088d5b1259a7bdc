"""When has a warm-up done its job? Throughput and cache hit ratio read from the stack, settling over time.

`warmup: {until_stable: true, max: 60s}` ends the warm-up at the first moment when, after the ramp, the last few
one-second intervals had the same request rate (within 10% of their mean) and the same cache hit ratio (within
5 points), or at the max. A stack that reports no request count never settles: its warm-up lasts the max.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

INTERVALS = 3
RATE_TOLERANCE = 0.10
RATIO_TOLERANCE = 0.05


@dataclass
class Settling:
    """Cumulative counters sampled about once a second; says whether the load has settled."""

    earliest: float  # (monotonic) the ramp's end: nothing before it counts
    intervals: int = INTERVALS
    samples: list[tuple[float, int, int | None, int | None]] = field(default_factory=list)

    def add(self, at: float, requests: int | None, hits: int | None, misses: int | None) -> bool:
        """Record one reading (cumulative requests, cache hits and misses); True once the load has settled."""
        if requests is None or at < self.earliest:
            return False
        self.samples.append((at, requests, hits, misses))
        recent = self.samples[-(self.intervals + 1):]
        if len(recent) < self.intervals + 1:
            return False
        pairs = list(itertools.pairwise(recent))
        rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairs if b[0] > a[0]]
        if len(rates) < self.intervals or min(rates) <= 0:
            return False
        mean = sum(rates) / len(rates)
        if max(rates) - min(rates) > RATE_TOLERANCE * mean:
            return False
        ratios = [_ratio(a, b) for a, b in pairs]
        known = [r for r in ratios if r is not None]
        if not known:
            return True  # no cache (or none counted): the rate alone decides
        return len(known) == len(ratios) and max(known) - min(known) <= RATIO_TOLERANCE


def _ratio(a: tuple[float, int, int | None, int | None], b: tuple[float, int, int | None, int | None]) -> float | None:
    if a[2] is None or a[3] is None or b[2] is None or b[3] is None:
        return None
    hits, looked_up = b[2] - a[2], (b[2] - a[2]) + (b[3] - a[3])
    return hits / looked_up if looked_up > 0 else None
