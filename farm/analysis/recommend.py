"""The cheapest configuration that meets the SLO at each load, phrased as the answer a team needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from farm.analysis.surfaces import FULL_REPETITIONS


@dataclass(frozen=True)
class Choice:
    """The configuration recommended at one load level (None fields when nothing meets the SLO)."""

    users: float  # the load level: users, or the rate offered (a whole number where it is one)
    architecture: str | None
    cache: str | None
    instances: int | None
    cost: float | None
    p95_ms: float | None
    error_ratio: float | None
    indicative: bool = False  # judged on its estimate: fewer repetitions than an interval needs

    def label(self) -> str:
        """E.g. ``monolith, local cache, 1 instance``."""
        if self.architecture is None:
            return "no measured configuration meets the SLO"
        plural = "s" if self.instances != 1 else ""
        return f"{self.architecture}, {self.cache} cache, {self.instances} instance{plural}"


def recommend(surface: pd.DataFrame, *, p95_ms: float | None, max_error_ratio: float = 0.01,
              costs: Mapping[str, float] | None = None, metric: str = "p95_ms") -> list[Choice]:
    """For each load level: the configuration with the lowest cost (instances × cost per instance) that meets
    the SLO — the latency at the upper end of its interval when the point has the repetitions an interval needs
    (else its estimate, and the choice is indicative), and the error ratio — ties to lower latency.
    """
    if surface.empty:
        return []
    costs = costs or {}
    data = surface.copy()
    data["cost"] = data["instances"] * data["architecture"].map(lambda a: costs.get(str(a), 1.0))
    full = data["n"] >= FULL_REPETITIONS if "n" in data else pd.Series(True, index=data.index)
    data["indicative"] = ~full
    bound = data[f"{metric}_hi"].where(full).fillna(data[metric]) if f"{metric}_hi" in data else data[metric]
    meets = data["error_ratio"].fillna(0) <= max_error_ratio
    if "load_stalled" in data:  # its latency is a lower bound: it never meets an SLO
        meets &= ~data["load_stalled"].astype("boolean").fillna(False).astype(bool)
    if p95_ms is not None:
        meets &= bound <= p95_ms
    data["meets"] = meets
    choices = []
    for users, part in data.groupby("users", sort=True):  # the load levels: users, or the rate offered
        ok = part[part["meets"]].sort_values(["cost", metric])
        if ok.empty:
            choices.append(Choice(_level(users), None, None, None, None, None, None))
            continue
        best = ok.iloc[0]
        choices.append(Choice(_level(users), str(best["architecture"]), str(best["cache"]), int(best["instances"]),
                              float(best["cost"]), float(best[metric]), float(best["error_ratio"]),
                              bool(best["indicative"])))
    return choices


def _level(value: float) -> float:
    """A load level as the sweep wrote it: 5, not 5.0; 2.5 stays 2.5."""
    number = float(value)
    return int(number) if number.is_integer() else number


def stalled_note(surface: pd.DataFrame, unit: str = "users") -> list[str]:
    """The line that says which points were left out of the recommendation because their users stalled."""
    if surface.empty or "load_stalled" not in surface:
        return []
    stalled = surface[surface["load_stalled"].astype("boolean").fillna(False).astype(bool)]
    if stalled.empty:
        return []
    points = "; ".join(f"{r['architecture']}, {r['cache']} cache, {r['instances']} instance"
                       f"{'s' if r['instances'] != 1 else ''} at {_level(r['users'])} {unit}"
                       for _, r in stalled.iterrows())
    return [f"left out (users stalled or late starts: latency a lower bound, never meeting the SLO): {points}"]


def phrase(choices: list[Choice], unit: str = "users") -> list[str]:
    """Consecutive loads with the same choice merged: ``up to ~40 users: …``, ``from 80 users: …``."""
    if not choices:
        return []
    runs: list[list[Choice]] = []
    for choice in choices:
        if runs and runs[-1][-1].label() == choice.label():
            runs[-1].append(choice)
        else:
            runs.append([choice])
    lines = []
    for i, run in enumerate(runs):
        first, last = run[0].users, run[-1].users
        if len(runs) == 1:
            span = f"at every load measured ({first}–{last} {unit})"
        elif i == 0:
            span = f"up to ~{last} {unit}"
        elif i == len(runs) - 1:
            span = f"from ~{first} {unit}"
        elif first == last:
            span = f"at ~{first} {unit}"
        else:
            span = f"from ~{first} to ~{last} {unit}"
        note = f" (indicative: fewer than {FULL_REPETITIONS} repetitions)" if any(c.indicative for c in run) else ""
        lines.append(f"{span}: {run[0].label()}{note}")
    return lines
