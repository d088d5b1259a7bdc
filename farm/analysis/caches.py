"""Which cache setting wins: at every load, the cache with the lowest metric and whether it is significantly lowest.

The architecture verdicts (`farm.analysis.verdict`) answer "monolith or microservices?" per cache setting. A
stack with no architecture choice — the classic WordPress exercise — asks the other question: per instance count
(and architecture, when there is one), which of ``none``/``local``/``shared``/``page`` gives the lowest p95, at
which load. Same estimand and intervals: each point's pooled percentile and its bootstrap draws over repetitions.

Per (architecture, instances) and load, the *leader* is the cache with the lowest estimate among the points that
may win (error ratio within the SLO's, offered rate achieved, no user stalled, no late start, load on Little's
law: a flagged latency is a lower bound). Every other cache's difference to the leader gets a 95% interval from one
simultaneous band over all the loads and rivals of the comparison (as the architecture verdicts do, so that many
comparisons do not find a winner by chance). A rival whose interval lies
above zero is *beaten*; the leader *wins* at that load when every rival is beaten, else it is *tied* with those
that are not. Below `MIN_REPETITIONS` there is nothing to resample: the leader is reported, marked *not enough data*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from farm.analysis.bootstrap import PointDraws, bucket_width
from farm.analysis.replicas import scale_of, without_scale
from farm.analysis.surfaces import FULL_REPETITIONS
from farm.analysis.verdict import (
    LEFT_OUT,
    MIN_REPETITIONS,
    UNIT,
    difference_bounds,
    flagged,
    indicative_advice,
    simultaneous_interval,
)

WINS, TIED, NOT_ENOUGH = "wins", "tied", "not enough data"
CANNOT_WIN = f"over the error-ratio SLO, short of the offered rate, {LEFT_OUT}"


@dataclass(frozen=True)
class CacheAtLoad:
    """At one load: the leading cache, the rivals it significantly beats, those it is tied with, the estimates."""

    load: float
    leader: str
    outcome: str  # WINS, TIED or NOT_ENOUGH
    tied_with: tuple[str, ...]
    values: dict[str, float]
    cannot_win: tuple[str, ...] = ()  # over the error-ratio SLO, short of the offered rate, stalled or off Little's law


@dataclass(frozen=True)
class CacheVerdict:
    """The cache comparison of one (architecture, instances): per load, who leads and whether significantly."""

    architecture: str
    instances: int
    metric: str
    repetitions: int
    caches: tuple[str, ...]
    points: list[CacheAtLoad] = field(default_factory=list)
    unit: str = UNIT

    @property
    def indicative(self) -> bool:
        """Fewer repetitions than an interval needs to be trusted."""
        return self.repetitions < FULL_REPETITIONS

    def describe(self) -> str:
        """One sentence: runs of loads with the same outcome, e.g. ``shared wins at 20–40 users; …``."""
        runs: list[tuple[str, list[float]]] = []
        for p in self.points:
            text = _point_text(p)
            if runs and runs[-1][0] == text:
                runs[-1][1].append(p.load)
            else:
                runs.append((text, [p.load]))
        parts = [f"{text} at {_span(loads)} {self.unit}" for text, loads in runs]
        sentence = "; ".join(parts) if parts else "no load measured with two cache settings"
        barred = [f"{', '.join(p.cannot_win)} at {_num(p.load)}" for p in self.points if p.cannot_win]
        if barred:
            sentence += f"; cannot win ({CANNOT_WIN}): {'; '.join(barred)} {self.unit}"
        if self.repetitions < MIN_REPETITIONS:
            sentence = f"{NOT_ENOUGH}: no interval; lowest measured: {sentence}"
        if self.indicative:
            sentence += f" ({indicative_advice(self.repetitions)})"
        return sentence

    def label(self) -> str:
        """E.g. ``3 instances`` or ``monolith, 3 instances``."""
        n = f"{self.instances} instance{'s' if self.instances != 1 else ''}"
        return n if self.architecture in ("-", "") else f"{self.architecture}, {n}"

    def as_json(self) -> dict[str, Any]:
        """The machine-readable form (`farm report --format json`)."""
        return {"architecture": self.architecture, "instances": self.instances, "metric": self.metric,
                "unit": self.unit, "repetitions": self.repetitions, "indicative": self.indicative,
                "caches": list(self.caches), "summary": self.describe(),
                "per_load": [{"load": p.load, "leader": p.leader, "outcome": p.outcome,
                              "tied_with": list(p.tied_with), "values": p.values,
                              "cannot_win": list(p.cannot_win)} for p in self.points]}


def _point_text(p: CacheAtLoad) -> str:
    if p.outcome == TIED:
        return f"{' ≈ '.join((p.leader, *p.tied_with))} (no significant difference)"
    if p.outcome == NOT_ENOUGH:
        return p.leader
    return f"{p.leader} wins"


def _span(loads: list[float]) -> str:
    first, last = _num(loads[0]), _num(loads[-1])
    return first if first == last else f"{first}–{last}"


def _num(value: float) -> str:
    return f"{value:g}"


def cache_verdicts(surface: pd.DataFrame, found: PointDraws | None, metric: str = "p95_ms",
                   max_error_ratio: float = 0.01, unit: str = UNIT) -> list[CacheVerdict]:
    """The cache comparison of every (architecture, instances) measured with two or more cache settings."""
    if surface.empty or found is None or "cache" not in surface.columns or surface["cache"].nunique() < 2:
        return []
    # Caches are compared at equal per-service replicas; the copies of an architecture that runs none of the
    # scaled services (see farm.analysis.replicas) give one verdict, not one per replica count.
    keys = [k for k in ("architecture", "instances") if k in surface.columns] + ["_scale"]
    rows = surface.assign(_row=np.arange(len(surface)), _scale=surface["cache"].astype(str).map(scale_of))
    out = []
    seen: set[tuple[Any, ...]] = set()
    for group, part in rows.groupby(keys, dropna=False, sort=True):
        values = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        copy = (values.get("architecture"), values.get("instances"), *sorted(
            (without_scale(str(c)), u, m) for c, u, m in zip(part["cache"], part["users"], part[metric], strict=True)))
        if copy in seen:
            continue
        seen.add(copy)
        verdict = _compare(part, found, metric, max_error_ratio)
        if verdict is not None:
            out.append(CacheVerdict(str(values.get("architecture", "-")), int(values.get("instances", 1)),
                                    metric, verdict[0], verdict[1], verdict[2], unit))
    return out


def _compare(part: pd.DataFrame, found: PointDraws, metric: str,
             max_error_ratio: float) -> tuple[int, tuple[str, ...], list[CacheAtLoad]] | None:
    loads = sorted(u for u, p in part.groupby("users") if p["cache"].nunique() >= 2)
    if not loads:
        return None
    part = part[part["users"].isin(loads)]
    reps = int(part["n"].min())
    caches = tuple(sorted(str(c) for c in part["cache"].unique()))
    barred = part["error_ratio"].fillna(0).to_numpy() > max_error_ratio
    barred |= flagged(part, "rate_saturated") | flagged(part, "generator_busy") | flagged(part, "load_stalled") \
        | flagged(part, "load_mismatch")
    part = part.assign(_barred=barred)
    # Leader per load, then every rival's difference to it: one family for the simultaneous band.
    leaders: dict[float, pd.Series] = {}
    pairs: list[tuple[float, pd.Series, pd.Series]] = []
    for load in loads:
        here = part[part["users"] == load]
        eligible = here[~here["_barred"]]
        leader = (eligible if not eligible.empty else here).sort_values([metric, "cache"]).iloc[0]
        leaders[load] = leader
        pairs += [(load, leader, rival) for _, rival in here.iterrows() if rival["cache"] != leader["cache"]]
    beaten: set[tuple[float, str]] = set()
    if reps >= MIN_REPETITIONS and pairs:
        draws = found.draws[metric]
        estimate = np.array([r[metric] - lead[metric] for _, lead, r in pairs], dtype=float)
        diff = np.stack([draws[int(r["_row"])] - draws[int(lead["_row"])] for _, lead, r in pairs])
        floor = np.array([(bucket_width(lead[metric]) + bucket_width(r[metric])) / 2 for _, lead, r in pairs],
                         dtype=float).reshape(len(pairs))
        rivals, leads = pd.DataFrame([r for _, _, r in pairs]), pd.DataFrame([lead for _, lead, _ in pairs])
        low, _high = simultaneous_interval(estimate, diff, floor, reps, difference_bounds(rivals, leads, metric))
        beaten = {(load, str(r["cache"])) for (load, lead, r), lo in zip(pairs, low, strict=True)
                  if lo > 0 and not lead["_barred"]}
    points = []
    for load in loads:
        here = part[part["users"] == load]
        leader = str(leaders[load]["cache"])
        rivals = tuple(sorted(str(c) for c in here["cache"] if str(c) != leader))
        tied = tuple(c for c in rivals if (load, c) not in beaten)
        outcome = NOT_ENOUGH if reps < MIN_REPETITIONS else (TIED if tied else WINS)
        points.append(CacheAtLoad(float(load), leader, outcome, tied if outcome == TIED else (),
                                  {str(r["cache"]): float(r[metric]) for _, r in here.iterrows()},
                                  tuple(sorted(str(r["cache"]) for _, r in here.iterrows() if r["_barred"]))))
    return reps, caches, points
