"""The difference surface and the crossovers, flattened from the verdicts for figures and `farm refine`.

Each `Crossover` is one crossing of one comparison (see `farm.analysis.verdict`): the load where microservices'
metric changes sides, its 95% interval and the two grid loads that bracket it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from farm.analysis.verdict import UNIT, Verdict


@dataclass(frozen=True)
class Crossover:
    """One crossing of microservices' metric over the monolith's, for one configuration."""

    cache: str
    instances: int
    metric: str
    status: str  # the comparison's verdict word
    users: float | None = None
    low: float | None = None
    high: float | None = None
    bracket: tuple[int, int] | None = None
    host: str | None = None
    unit: str = UNIT

    def describe(self) -> str:
        """A short phrase for a figure or a table cell."""
        if self.users is None:
            return self.status
        return f"~{self.users:.0f} {self.unit} (95% interval {self.low:.0f}–{self.high:.0f})"


def crossovers(found: list[Verdict]) -> list[Crossover]:
    """Every crossing of every comparison (indicative ones too: `farm refine` narrows their brackets)."""
    out = []
    for v in found:
        for c in v.crossovers:
            out.append(Crossover(v.cache, v.instances, v.metric, v.verdict, c.at, c.low, c.high,
                                 (int(c.bracket[0]), int(c.bracket[1])), v.host, v.unit))
    return out


def _load(value: float) -> float | int:
    """A grid load as the sweep wrote it: 5, not 5.0."""
    return int(value) if float(value).is_integer() else value


def difference(found: list[Verdict]) -> pd.DataFrame:
    """The microservices − monolith difference per point, with its interval and classification."""
    rows = [{"cache": v.cache, "instances": v.instances, **({"host": v.host} if v.host is not None else {}),
             "users": _load(p.load), "monolith": p.monolith, "microservices": p.microservices, "diff": p.diff,
             "diff_lo": p.low, "diff_hi": p.high, "classification": p.classification}
            for v in found for p in v.points]
    return pd.DataFrame(rows)
