"""The cheapest configuration that meets the SLO at each load, phrased as the answer a team needs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from farm.analysis.surfaces import FULL_REPETITIONS
from farm.analysis.verdict import LEFT_OUT, flagged
from farm.stacks.scaling import PREFIX


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
    replicas: tuple[tuple[str, int], ...] = ()  # the configuration's replicas.X beside instances, e.g. catalog×3

    def label(self) -> str:
        """E.g. ``monolith, local cache, 1 instance`` or ``microservices, none cache, 1 instance, catalog×3``."""
        if self.architecture is None:
            return "no measured configuration meets the SLO"
        plural = "s" if self.instances != 1 else ""
        scaled = "".join(f", {service}×{n}" for service, n in self.replicas)
        return f"{self.architecture}, {self.cache} cache, {self.instances} instance{plural}{scaled}"


def recommend(configs: pd.DataFrame, *, metric: str = "p95_ms") -> list[Choice]:
    """For each load level: the cheapest configuration that meets the SLO, ties to lower latency.

    ``configs`` is `farm.analysis.configs.config_points`: each configuration's declared cost (Σ replicas × cost
    per replica, else instances × ``--cost ARCH=N``) and whether it meets the SLO by the one rule the cost answer
    and the capacity search use (the upper bound of its interval, its error ratio, no flagged cell).
    """
    if configs.empty:
        return []
    choices = []
    for load, part in configs.groupby("load", sort=True):  # the load levels: users, or the rate offered
        ok = part[part["meets"].astype(bool)].sort_values(["cost", metric])
        if ok.empty:
            choices.append(Choice(_level(load), None, None, None, None, None, None))
            continue
        best = ok.iloc[0]
        config = json.loads(best["config"])
        scaled = tuple((k.removeprefix(PREFIX), int(v)) for k, v in config.items() if k != "instances")
        choices.append(Choice(_level(load), str(best["architecture"]), str(best["label"]),
                              int(config.get("instances", 1)), float(best["cost"]), float(best[metric]),
                              float(best["error_ratio"]), bool(best["indicative"]), scaled))
    return choices


def _level(value: float) -> float:
    """A load level as the sweep wrote it: 5, not 5.0; 2.5 stays 2.5."""
    number = float(value)
    return int(number) if number.is_integer() else number


def stalled_note(cells: pd.DataFrame, unit: str = "users") -> list[str]:
    """The line that says which points were left out of the recommendation because their latency is a lower bound
    (users stalled, late starts, load off Little's law), each point once.

    ``cells``: one row per cell, labelled by its own configuration (``separate_other_parameters(...,
    spread_unrun=False)``), not the surface: there a monolith point is repeated under every microservices replica
    count it is compared with, and would be named as ``monolith, shared · catalog×2 cache``.
    """
    if cells.empty or not {"load_stalled", "load_mismatch"} & set(cells.columns):
        return []
    stalled = cells[flagged(cells, "load_stalled") | flagged(cells, "load_mismatch")]
    stalled = stalled.drop_duplicates(["architecture", "cache", "instances", "users"]).sort_values(
        ["users", "architecture", "cache", "instances"])
    if stalled.empty:
        return []
    points = "; ".join(f"{r['architecture']}, {r['cache']} cache, {r['instances']} instance"
                       f"{'s' if r['instances'] != 1 else ''} at {_level(r['users'])} {unit}"
                       for _, r in stalled.iterrows())
    return [f"left out ({LEFT_OUT}: latency a lower bound, never meeting the SLO): {points}"]


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
