"""Where microservices' latency falls below the monolith's, per cache setting and instance count."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

USABLE = "status == 'done' and generator_saturated != True"


@dataclass(frozen=True)
class Crossover:
    """For one (cache, instances): the lowest measured load at which microservices beat the monolith."""

    cache: str
    instances: int
    users: int | None
    metric: str
    monolith_ms: float | None
    microservices_ms: float | None

    def describe(self) -> str:
        """A sentence for the report and the terminal."""
        if self.users is None:
            return "not reached in this sweep"
        return (f"from {self.users} users ({self.metric}: microservices {self.microservices_ms:.0f} ms "
                f"< monolith {self.monolith_ms:.0f} ms)")


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells that count: done, and whose generator did not saturate."""
    if frame.empty:
        return frame
    saturated = frame["generator_saturated"].fillna(False).astype(bool)
    return frame[(frame["status"] == "done") & ~saturated]


def mean_curve(frame: pd.DataFrame, metric: str = "p95_ms") -> pd.DataFrame:
    """Mean of ``metric`` over repetitions per (architecture, cache, instances, users)."""
    keys = [k for k in ("architecture", "cache", "instances", "users") if k in frame.columns]
    return frame.groupby(keys, as_index=False)[metric].mean()


def first_crossovers(frame: pd.DataFrame, metric: str = "p95_ms") -> list[Crossover]:
    """For each (cache, instances): the lowest users level where microservices' metric < monolith's."""
    data = usable(frame)
    if data.empty or "architecture" not in data.columns:
        return []
    curve = mean_curve(data, metric)
    if "cache" not in curve.columns:
        curve = curve.assign(cache="-")
    found = []
    for (cache, instances), part in curve.groupby(["cache", "instances"]):
        wide = part.pivot_table(index="users", columns="architecture", values=metric)
        if not {"monolith", "microservices"} <= set(wide.columns):
            continue
        wide = wide.dropna()
        beats = wide[wide["microservices"] < wide["monolith"]]
        if beats.empty:
            found.append(Crossover(str(cache), int(instances), None, metric, None, None))
        else:
            users = int(beats.index.min())
            found.append(Crossover(str(cache), int(instances), users, metric,
                                   float(wide.loc[users, "monolith"]), float(wide.loc[users, "microservices"])))
    return found
