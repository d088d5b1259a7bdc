"""Verdicts: at each load, is microservices − monolith significantly lower, higher, or inconclusive; then the answer.

Per comparison (cache, instances[, host]) the difference of the chosen metric is classified at every load from
its bootstrap interval (see `farm.analysis.bootstrap`), never narrower than the two buckets' resolution. The
answer is one of the words below. A crossover is every change between a significantly higher and a significantly
lower load (inconclusive loads in between are allowed); its estimate is where the measured difference changes
sign, its interval the 95% range of where the resampled differences change sign in that span, never narrower
than the grid bracket the estimate lies in. A point whose error ratio exceeds the SLO's maximum never wins.

Which p95: the comparison uses the percentiles of *all* requests (``p95_ms``, failed ones included), as Locust
reports them — a timeout is a slow answer, not a missing one. Fast failures could pull that figure down, which is
why a point over the error-ratio SLO can never be the faster one. The p95 of successful requests alone
(``p95_ok_ms``) is stored beside it per cell and shown in `farm results`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from farm.analysis.bootstrap import PointDraws, bucket_width, small_sample_stretch
from farm.analysis.surfaces import FULL_REPETITIONS
from farm.load_level import RATE, UNITS, USERS

GROUP = ("cache", "instances", "host")
UNIT = UNITS[USERS]  # the load unit of a closed-loop sweep
RATE_UNIT = UNITS[RATE]  # that of an open-loop sweep (matrix.rate)
MIN_REPETITIONS = 2  # fewer: nothing independent to resample, so "not enough data"
# Why a point is never the faster side: its latency is a lower bound (load_stalled, load_mismatch).
LEFT_OUT = "users stalled or late starts, or load off Little's law"

LOWER, HIGHER, INCONCLUSIVE = "lower", "higher", "inconclusive"
CROSSOVER = "crossover"
FASTER = "faster throughout"
SLOWER = "slower throughout"
NO_DIFFERENCE = "no significant difference"
NOT_ENOUGH = "not enough data"
PARTLY_FASTER = "faster at some loads"  # significant at some loads only, all of one sign
PARTLY_SLOWER = "slower at some loads"


@dataclass(frozen=True)
class PointVerdict:
    """Microservices − monolith at one load: the difference, its 95% interval and its classification."""

    load: float
    classification: str
    diff: float
    low: float | None
    high: float | None
    monolith: float
    microservices: float
    over_error_slo: tuple[str, ...] = ()
    saturated: tuple[str, ...] = ()  # short of the offered rate (< 95%, open loop), or the generator's set saturated
    # architectures whose users stalled, whose open-loop starts fell behind, or whose load was off Little's law
    stalled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Crossing:
    """One sign change: microservices become faster (``to_lower``) or slower, at ``at`` within [low, high]."""

    at: float
    low: float
    high: float
    bracket: tuple[float, float]
    to_lower: bool


@dataclass(frozen=True)
class Verdict:
    """The answer for one comparison: its verdict word, crossings, per-load classification and their support."""

    cache: str
    instances: int
    metric: str
    verdict: str
    repetitions: int
    crossovers: list[Crossing] = field(default_factory=list)
    points: list[PointVerdict] = field(default_factory=list)
    share_no_crossing: float | None = None
    share_multiple: float | None = None
    host: str | None = None
    unit: str = UNIT

    @property
    def indicative(self) -> bool:
        """Fewer repetitions than an interval needs to be trusted."""
        return self.repetitions < FULL_REPETITIONS

    def advice(self) -> str | None:
        """What would make an indicative answer an interval, or None."""
        if not self.indicative:
            return None
        return indicative_advice(self.repetitions)

    def describe(self) -> str:
        """The verdict as one sentence, starting with its word, for the terminal and the report."""
        name = self.metric.removesuffix("_ms")
        loads = [p.load for p in self.points]
        unit = self.unit
        span = f"{_num(min(loads))}–{_num(max(loads))} {unit}" if loads else ""
        if self.verdict == CROSSOVER:
            text = "; ".join(_crossing_text(c, unit) for c in self.crossovers)
            text = f"{CROSSOVER}{'s' if len(self.crossovers) > 1 else ''} {text}"
        elif self.verdict == NOT_ENOUGH:
            seen = ", ".join(f"between {_num(c.bracket[0])} and {_num(c.bracket[1])} {unit}"
                             for c in self.crossovers)
            text = f"{NOT_ENOUGH}: no interval" + (f"; the measured difference changes sign {seen}" if seen else "")
        elif self.verdict in (FASTER, SLOWER):
            word = "lower" if self.verdict == FASTER else "higher"
            text = f"{self.verdict}: microservices' {name} is significantly {word} at every load ({span})"
        elif self.verdict in (PARTLY_FASTER, PARTLY_SLOWER):
            wanted = LOWER if self.verdict == PARTLY_FASTER else HIGHER
            where = ", ".join(_num(p.load) for p in self.points if p.classification == wanted)
            text = f"{self.verdict}: microservices' {name} is significantly {wanted} at {where} {unit}, " \
                   "no significant difference elsewhere"
        else:
            text = f"{NO_DIFFERENCE} in {name} at any load ({span})"
        stalled = [f"{', '.join(p.stalled)} at {_num(p.load)}" for p in self.points if p.stalled]
        if stalled:
            text += f"; left out as the faster side ({LEFT_OUT}): {'; '.join(stalled)} {unit}"
        advice = self.advice()
        return f"{text} ({advice})" if advice else text

    def as_json(self) -> dict[str, Any]:
        """The machine-readable verdict of `farm report --format json`."""
        return {"cache": self.cache, "instances": self.instances, "host": self.host, "metric": self.metric,
                "unit": self.unit, "verdict": self.verdict, "description": self.describe(),
                "crossovers": [{"at": c.at, "low": c.low, "high": c.high,
                                "direction": "microservices faster above" if c.to_lower else
                                "microservices slower above"} for c in self.crossovers],
                "points": [{"load": int(p.load) if p.load.is_integer() else p.load,
                            "classification": p.classification, "diff": p.diff, "low": p.low,
                            "high": p.high, "monolith": p.monolith, "microservices": p.microservices,
                            "over_error_slo": list(p.over_error_slo), "saturated": list(p.saturated),
                            "stalled": list(p.stalled)}
                           for p in self.points],
                "share_no_crossing": self.share_no_crossing, "share_multiple": self.share_multiple,
                "repetitions": self.repetitions, "indicative": self.indicative, "advice": self.advice()}


def indicative_advice(repetitions: int) -> str:
    """What an answer from fewer than FULL_REPETITIONS says: one repetition gives no interval, two a wide one."""
    s = "" if repetitions == 1 else "s"
    wanted = "an interval" if repetitions < MIN_REPETITIONS else "an interval to be trusted"
    return f"indicative: {repetitions} repetition{s}; set repetitions: {FULL_REPETITIONS} or more for {wanted}"


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 or abs(value) >= 10 else f"{value:.1f}"


def _crossing_text(c: Crossing, unit: str) -> str:
    direction = "microservices faster above" if c.to_lower else "microservices slower above"
    return f"at ~{_num(c.at)} {unit} (95% interval {_num(c.low)}–{_num(c.high)}; {direction})"


def verdicts(surface: pd.DataFrame, found: PointDraws | None, metric: str = "p95_ms",
             max_error_ratio: float = 0.01, unit: str = UNIT) -> list[Verdict]:
    """The verdict of every (cache, instances[, host]) whose points have both architectures; the surface's
    ``users`` column holds the load levels, in ``unit``."""
    if surface.empty or found is None or "architecture" not in surface.columns:
        return []
    keys = [k for k in GROUP if k in surface.columns and (k != "host" or "host" in surface.columns)]
    rows = surface.assign(_row=np.arange(len(surface)))
    out = []
    for group, part in rows.groupby(keys, dropna=False, sort=True):
        values = dict(zip(keys, group if isinstance(group, tuple) else (group,), strict=True))
        mono = part[part["architecture"] == "monolith"].set_index("users")
        micro = part[part["architecture"] == "microservices"].set_index("users")
        loads = sorted(set(mono.index) & set(micro.index))
        if not loads:
            continue
        mono, micro = mono.loc[loads], micro.loc[loads]
        out.append(replace(_verdict(values, metric, np.asarray(loads, dtype=float), mono, micro, found,
                                    max_error_ratio), unit=unit))
    return out


def _verdict(values: dict[str, Any], metric: str, loads: np.ndarray, mono: pd.DataFrame, micro: pd.DataFrame,
             found: PointDraws, max_error_ratio: float) -> Verdict:
    reps = int(min(mono["n"].min(), micro["n"].min()))
    estimate = micro[metric].to_numpy(dtype=float) - mono[metric].to_numpy(dtype=float)
    draws = found.draws[metric][micro["_row"].to_numpy()] - found.draws[metric][mono["_row"].to_numpy()]
    floor = (bucket_width(mono[metric].to_numpy()) + bucket_width(micro[metric].to_numpy())) / 2
    low, high = simultaneous_interval(estimate, draws, floor, reps, difference_bounds(micro, mono, metric))
    enough = reps >= MIN_REPETITIONS
    over_mono = mono["error_ratio"].fillna(0).to_numpy() > max_error_ratio
    over_micro = micro["error_ratio"].fillna(0).to_numpy() > max_error_ratio
    # Short of the offered rate, or its host saturated on the generator's side (farm.analysis.configs: the
    # generator measured itself); the stack's set saturated alone is a result and may win.
    short_mono, short_micro = (flagged(side, "rate_saturated") | flagged(side, "generator_busy")
                               for side in (mono, micro))
    stuck_mono, stuck_micro = (flagged(side, "load_stalled") | flagged(side, "load_mismatch") for side in (mono, micro))
    points, signs = [], np.zeros(len(loads), dtype=int)
    for i, load in enumerate(loads):
        sign = (-1 if high[i] < 0 else 1 if low[i] > 0 else 0) if enough else 0
        # A point over the SLO's error ratio, one that did not carry the rate offered, or one whose users stalled or
        # whose load was off Little's law (users' time missing: its latency a lower bound) cannot win: its side is
        # never the faster one.
        if (sign < 0 and (over_micro[i] or short_micro[i] or stuck_micro[i])) or \
                (sign > 0 and (over_mono[i] or short_mono[i] or stuck_mono[i])):
            sign = 0
        signs[i] = sign
        over, short, stuck = (tuple(a for a, flag in (("monolith", m[i]), ("microservices", s[i])) if flag)
                              for m, s in ((over_mono, over_micro), (short_mono, short_micro),
                                           (stuck_mono, stuck_micro)))
        points.append(PointVerdict(float(load), {-1: LOWER, 1: HIGHER, 0: INCONCLUSIVE}[sign], float(estimate[i]),
                                   float(low[i]) if enough else None, float(high[i]) if enough else None,
                                   float(mono[metric].iloc[i]), float(micro[metric].iloc[i]), over, short, stuck))
    cache, instances = str(values.get("cache", "-")), int(values.get("instances", 1))
    host = None if values.get("host") is None or pd.isna(values.get("host")) else str(values["host"])
    base = Verdict(cache, instances, metric, NOT_ENOUGH, reps, points=points, host=host)
    if not enough:
        return replace(base, crossovers=_estimate_crossings(loads, estimate))
    crossings = _significant_crossings(loads, signs, estimate, draws)
    none_share, many_share = _crossing_shares(draws)
    if crossings:
        word = CROSSOVER
    elif (signs == -1).all():
        word = FASTER
    elif (signs == 1).all():
        word = SLOWER
    elif (signs == 0).all():
        word = NO_DIFFERENCE
    else:
        word = PARTLY_FASTER if (signs <= 0).all() else PARTLY_SLOWER
    return replace(base, verdict=word, crossovers=crossings, share_no_crossing=none_share,
                   share_multiple=many_share)


def flagged(side: pd.DataFrame, flag: str) -> np.ndarray:
    """Per row, whether it carries ``flag`` (``rate_saturated``, ``load_stalled``, ``load_mismatch``; False where not
    measured)."""
    if flag not in side.columns:
        return np.zeros(len(side), dtype=bool)
    return side[flag].astype("boolean").fillna(False).to_numpy(dtype=bool)


def simultaneous_interval(estimate: np.ndarray, draws: np.ndarray, floor_half: np.ndarray, repetitions: int,
                          bounds: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """95% intervals that hold at every load together (bootstrap max-t band), never narrower than ±floor_half.

    Pointwise 95% intervals at ten loads would call one of them significant by chance one time in three; the
    verdict is about the whole curve, so the band's width comes from the 95th percentile of the largest
    standardised deviation over the loads. With few repetitions the band is stretched as every interval is
    (`small_sample_stretch`): in simulations of identical architectures with 3 repetitions, the unstretched
    band called 17% of sweeps different, the stretched one none of 60, while still finding every crossover
    with 5 repetitions.

    ``bounds``: per load, the values the difference can take — of a − b, [−b's upper bound, a's upper bound],
    as neither latency is below 0; the band never claims more than that (it never changes a classification:
    those bounds are ≤ 0 and ≥ 0).
    """
    spread = np.std(draws, axis=1)
    varies = spread > 0
    if varies.any():
        deviation = np.abs(draws[varies] - estimate[varies, None]) / spread[varies, None]
        critical = float(np.percentile(deviation.max(axis=0), 95))
    else:
        critical = 0.0
    half = np.fmax(critical * spread * small_sample_stretch(repetitions), floor_half)
    if bounds is None:
        return estimate - half, estimate + half
    return np.fmax(estimate - half, bounds[0]), np.fmin(estimate + half, bounds[1])


def difference_bounds(minuend: pd.DataFrame | pd.Series, subtrahend: pd.DataFrame | pd.Series,
                      metric: str) -> tuple[np.ndarray, np.ndarray]:
    """What a − b of two latencies can be: from −(b's upper bound) to a's (each point's own 95% interval, or
    unbounded where it has none)."""
    def upper(side: pd.DataFrame | pd.Series) -> np.ndarray:
        column = f"{metric}_hi"
        values = np.asarray(side.get(column, np.nan), dtype=float)
        return np.nan_to_num(values, nan=np.inf)

    return -upper(subtrahend), upper(minuend)


def _interpolate(loads: np.ndarray, diff: np.ndarray, k: int, m: int) -> float:
    """Where ``diff`` reaches zero between loads k and m (linear; loads between them measured zero)."""
    before, after = diff[k], diff[m]
    if before == after:
        return float(loads[m])
    return float(loads[k] + before / (before - after) * (loads[m] - loads[k]))


def _estimate_crossings(loads: np.ndarray, diff: np.ndarray) -> list[Crossing]:
    """Every sign change of the measured difference, its interval only its grid bracket (no resampling)."""
    found, last = [], None
    for m, value in enumerate(diff):
        sign = int(np.sign(value)) if not np.isnan(value) else 0
        if not sign:
            continue
        if last is not None and sign != np.sign(diff[last]):
            bracket = (float(loads[last]), float(loads[m]))
            found.append(Crossing(_interpolate(loads, diff, last, m), *bracket, bracket, sign < 0))
        last = m
    return found


def _significant_crossings(loads: np.ndarray, signs: np.ndarray, diff: np.ndarray,
                           draws: np.ndarray) -> list[Crossing]:
    """Every change between significant loads of opposite sign, located and given its bootstrap interval."""
    significant = np.flatnonzero(signs)
    found = []
    for i, j in itertools.pairwise(significant):
        if signs[i] == signs[j]:
            continue
        after = signs[j]
        m = int(next((k for k in range(i + 1, j + 1) if np.sign(diff[k]) == after), j))
        # The bracket starts at the last load measured on the other side: a zero difference is no side.
        k = int(max(k for k in range(i, m) if np.sign(diff[k]) == -after))
        at = _interpolate(loads, diff, k, m)
        bracket = (float(loads[k]), float(loads[m]))
        span = draws[i:j + 1]  # (loads in the span, resamples)
        reached = np.sign(span) == after
        first = np.argmax(reached, axis=0)
        prev = np.maximum(first - 1, 0)
        cols = np.arange(span.shape[1])
        d0, d1 = span[prev, cols], span[first, cols]
        u0, u1 = loads[i:j + 1][prev], loads[i:j + 1][first]
        with np.errstate(invalid="ignore", divide="ignore"):
            where = np.where(d0 != d1, u0 + d0 / (d0 - d1) * (u1 - u0), u1)
        where = np.where(first == 0, loads[i], where)
        where = np.where(reached.any(axis=0), where, loads[j])
        low, high = np.percentile(where, [2.5, 97.5])
        found.append(Crossing(at, float(min(low, bracket[0])), float(max(high, bracket[1])), bracket, after < 0))
    return found


def _crossing_shares(draws: np.ndarray) -> tuple[float, float]:
    """The shares of resamples whose difference never changes sign, and changes sign more than once."""
    signs = pd.DataFrame(np.sign(draws)).replace(0, np.nan).ffill().to_numpy()
    changes = (signs[1:] * signs[:-1] < 0).sum(axis=0)
    return float((changes == 0).mean()), float((changes >= 2).mean())
