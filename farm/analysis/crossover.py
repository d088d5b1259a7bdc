"""Where microservices' latency falls below the monolith's: the difference surface and the crossover load.

For each cache setting and instance count (and host, when cells ran on several), the difference
microservices − monolith of a metric is taken point by point; the crossover is the load where it first turns
negative, interpolated linearly between the two grid loads that bracket it. Its interval comes from where the
difference's 95% bounds cross zero: the lower bound crosses first (earliest plausible), the upper bound last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

GROUP = ("cache", "instances", "host")


@dataclass(frozen=True)
class Crossover:
    """The load at which microservices' metric drops below the monolith's, for one configuration."""

    cache: str
    instances: int
    metric: str
    status: str  # "crosses", "microservices faster throughout", "not reached"
    users: float | None = None
    low: float | None = None
    high: float | None = None
    bracket: tuple[int, int] | None = None
    host: str | None = None

    def describe(self) -> str:
        """A sentence for the report and the terminal."""
        name = self.metric.removesuffix("_ms")
        if self.status == "not reached":
            return f"not reached in this sweep (monolith {name} stays lower up to the highest load)"
        if self.status == "microservices faster throughout":
            return f"microservices {name} is lower already at the lowest load measured"
        assert self.users is not None
        low = "?" if self.low is None else f"{self.low:.0f}"
        high = f"beyond {self.bracket[1] if self.bracket else '?'}" if self.high is None else f"{self.high:.0f}"
        return f"at ~{self.users:.0f} users (95% interval {low}–{high})"


def difference(surface: pd.DataFrame, metric: str = "p95_ms") -> pd.DataFrame:
    """The microservices − monolith difference of ``metric`` per point, with a 95% interval."""
    keys = [k for k in (*GROUP, "users") if k in surface.columns]
    cols = [metric, f"{metric}_lo", f"{metric}_hi"]
    mono = surface[surface["architecture"] == "monolith"].set_index(keys)[cols]
    micro = surface[surface["architecture"] == "microservices"].set_index(keys)[cols]
    both = mono.add_suffix("_mono").join(micro.add_suffix("_micro"), how="inner")
    diff = both[f"{metric}_micro"] - both[f"{metric}_mono"]
    half_mono = (both[f"{metric}_hi_mono"] - both[f"{metric}_lo_mono"]) / 2
    half_micro = (both[f"{metric}_hi_micro"] - both[f"{metric}_lo_micro"]) / 2
    half = np.sqrt(half_mono.fillna(0) ** 2 + half_micro.fillna(0) ** 2)
    unknown = half_mono.isna() & half_micro.isna()
    out = pd.DataFrame({"monolith": both[f"{metric}_mono"], "microservices": both[f"{metric}_micro"],
                        "diff": diff, "diff_lo": (diff - half).mask(unknown), "diff_hi": (diff + half).mask(unknown)})
    return out.reset_index().sort_values(keys)


def _first_crossing(users: np.ndarray, values: np.ndarray) -> tuple[float | None, int | None]:
    """The interpolated load where ``values`` first goes from ≥ 0 to < 0, and the index after it."""
    for i, value in enumerate(values):
        if math.isnan(value):
            continue
        if value < 0:
            if i == 0:
                return float(users[0]), 0
            before = values[i - 1]
            if math.isnan(before):
                return float(users[i]), i
            fraction = before / (before - value)
            return float(users[i - 1] + fraction * (users[i] - users[i - 1])), i
    return None, None


def crossovers(surface: pd.DataFrame, metric: str = "p95_ms") -> list[Crossover]:
    """The crossover of every (cache, instances[, host]) that has both architectures."""
    if surface.empty or "architecture" not in surface.columns:
        return []
    diff = difference(surface, metric)
    keys = [k for k in GROUP if k in diff.columns]
    found = []
    for group, part in diff.groupby(keys, dropna=False, sort=True):
        values = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        part = part.sort_values("users")
        users = part["users"].to_numpy(dtype=float)
        where, index = _first_crossing(users, part["diff"].to_numpy(dtype=float))
        cache, instances = str(values.get("cache", "-")), int(values.get("instances", 1))
        host = None if values.get("host") is None else str(values["host"])
        if where is None or index is None:
            found.append(Crossover(cache, instances, metric, "not reached", host=host))
            continue
        if index == 0:
            found.append(Crossover(cache, instances, metric, "microservices faster throughout", host=host))
            continue
        low, _ = _first_crossing(users, part["diff_lo"].to_numpy(dtype=float))
        high, _ = _first_crossing(users, part["diff_hi"].to_numpy(dtype=float))
        bracket = (int(users[index - 1]), int(users[index]))
        found.append(Crossover(cache, instances, metric, "crosses", users=where, low=low, high=high,
                               bracket=bracket, host=host))
    return found
