"""The cost side of the answer: per load, each architecture's cheapest configuration that meets the SLO, and the
load from which microservices meet it for significantly less than the monolith (the switch point).

Per comparison (cache setting, and any other varying parameter) and load, an architecture's *cheapest cost* is
the declared cost of its cheapest measured configuration that meets the SLO (`farm.analysis.configs`: the upper
bound of its p95 interval within it). Its interval runs from the cheapest configuration that *may* meet it (the
lower bound within the SLO) to that cost: the configurations in between could not be told either way. When no
measured configuration meets it, the cheapest cost lies above every configuration that significantly fails.

Microservices are *significantly cheaper* at a load when their cheapest cost is below the low end of the
monolith's interval (or the monolith meets the SLO with no configuration measured up to that cost), and
significantly dearer the other way round; otherwise the load is inconclusive. The switch point is the lowest load
from which microservices are significantly cheaper and never significantly dearer at a higher load; its interval
runs from the last load below it at which the monolith was no dearer by the estimates (never narrower than the
load bracket; unbounded below, "at or below", when no load shows that), and its estimate is where the cost
difference, linear between that load and the next one up, changes sign. The two cost curves are step functions
of the load: nothing finer than the loads measured can be claimed. Each load is judged on its own (no correction
across loads, unlike the verdict's simultaneous band): with many loads, one of them can be significant by chance.

The outcome is one of the issue's five words. "… cheaper throughout" needs every load significant. When neither
architecture meets the SLO at any load, some loads are inconclusive beside significant ones (and there is no
switch), or the significant loads disagree (microservices cheaper at one load, the monolith at a higher one: the
curves cross both ways), the outcome is "not enough data" and its sentence says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from farm.analysis.configs import config_points
from farm.analysis.cost import StoredPrice as Price
from farm.analysis.cost import per_million_requests
from farm.analysis.surfaces import FULL_REPETITIONS
from farm.analysis.verdict import MIN_REPETITIONS, UNIT, indicative_advice

SWITCH = "switch"
MICRO_CHEAPER = "microservices cheaper throughout"
MONO_CHEAPER = "monolith cheaper throughout"
NO_DIFFERENCE = "no significant difference"
NOT_ENOUGH = "not enough data"
ARCHITECTURES = ("monolith", "microservices")


@dataclass(frozen=True)
class Cheapest:
    """One architecture at one load: its cheapest configuration meeting the SLO, and the interval of that cost."""

    cost: float | None  # None: no configuration measured meets the SLO
    cost_low: float | None  # the cheapest configuration that may meet it; None: every one measured fails
    replicas: dict[str, int] | None
    p95_ms: float | None
    p95_low: float | None
    p95_high: float | None
    repetitions: int
    indicative: bool
    measured: int  # configurations measured at this load
    most_measured: float  # the highest cost measured at this load
    rps: float | None = None  # the throughput the cheapest configuration sustained (mean over repetitions)
    flagged: int = 0  # configurations measured at this load that a flagged cell bars from meeting the SLO

    def money(self, price: Price | None) -> float | None:
        """What a million requests cost on the cheapest configuration at the rate it sustained (None without a
        price or a configuration meeting the SLO)."""
        return None if price is None else per_million_requests(self.cost, self.rps, price.per_unit_hour)

    def as_json(self, price: Price | None = None) -> dict[str, Any]:
        """The per-architecture entry of ``cost_benefit.per_load`` (with a price: money per million requests)."""
        money = {} if price is None else {"per_million_requests": self.money(price), "currency": price.currency}
        return {"replicas": self.replicas, "cost": self.cost, "cost_low": self.cost_low, "p95_ms": self.p95_ms,
                "p95_low": self.p95_low, "p95_high": self.p95_high, "rps": self.rps, **money,
                "repetitions": self.repetitions, "indicative": self.indicative,
                "configurations_measured": self.measured, "configurations_flagged": self.flagged,
                "highest_cost_measured": self.most_measured}


@dataclass(frozen=True)
class LoadCost:
    """Both architectures' cheapest costs at one load, and which is significantly cheaper (-1: microservices)."""

    load: float
    monolith: Cheapest | None
    microservices: Cheapest | None
    sign: int  # -1 microservices cheaper, 1 monolith cheaper, 0 inconclusive (significance; estimates below 2 reps)

    @property
    def difference(self) -> float | None:
        """Microservices' cheapest cost − the monolith's, when both meet the SLO."""
        m, s = self.monolith, self.microservices
        return None if m is None or s is None or m.cost is None or s.cost is None else s.cost - m.cost


@dataclass(frozen=True)
class Switch:
    """The load from which microservices meet the SLO for less: estimate and interval (``low`` and ``at`` None:
    unbounded below, the switch is at or below ``high``)."""

    at: float | None
    low: float | None
    high: float


@dataclass(frozen=True)
class CostBenefit:
    """The cost answer of one comparison (cache setting): its outcome, switch point and per-load costs."""

    cache: str
    outcome: str
    repetitions: int
    per_load: list[LoadCost] = field(default_factory=list)
    switch: Switch | None = None
    unit: str = UNIT
    slo_ms: float | None = None
    price: Price | None = None  # the sweep's price of one cost unit per hour: costs also as money

    @property
    def indicative(self) -> bool:
        """Fewer repetitions than an interval needs to be trusted."""
        return self.repetitions < FULL_REPETITIONS

    def describe(self) -> str:
        """The answer in one sentence, starting with its outcome."""
        unit = self.unit
        if self.outcome == SWITCH and self.switch is not None:
            s = self.switch
            below = "" if s.low is not None else ", and no load measured below it shows the monolith cheaper"
            text = (f"{SWITCH} {_switch_text(s, unit)}: from there microservices meet the SLO for less"
                    f"{self._example(s.high)}{below}")
        elif self.outcome == NOT_ENOUGH:
            text = f"{NOT_ENOUGH}: {self._why_not_enough()}"
        elif self.outcome in (MICRO_CHEAPER, MONO_CHEAPER):
            text = f"{self.outcome}: {self._where()}"
        else:
            text = f"{NO_DIFFERENCE} in the cost of meeting the SLO" + (f" ({self._where()})" if self._where() else "")
        if self.indicative:
            text += f" ({indicative_advice(self.repetitions)})"
        return text

    def _example(self, load: float) -> str:
        point = next((p for p in self.per_load if p.load == load), None)
        if point is None or point.monolith is None or point.microservices is None:
            return ""
        mono = point.monolith
        theirs = f"{_num(mono.cost)}" if mono.cost is not None else _cost(mono)
        return f" (at {_num(load)} {self.unit}: {_cost(point.microservices)} against the monolith's {theirs})"

    def _where(self) -> str:
        micro = [_num(p.load) for p in self.per_load if p.sign < 0]
        mono = [_num(p.load) for p in self.per_load if p.sign > 0]
        parts = [f"microservices significantly cheaper at {', '.join(micro)} {self.unit}"] if micro else []
        parts += [f"the monolith significantly cheaper at {', '.join(mono)} {self.unit}"] if mono else []
        rest = [_num(p.load) for p in self.per_load if p.sign == 0]
        if parts and rest:
            parts.append(f"no significant difference at {', '.join(rest)}")
        return "; ".join(parts)

    def _why_not_enough(self) -> str:
        if not self.per_load:
            return "no load measured with both architectures"
        if self.repetitions < MIN_REPETITIONS:
            seen = f"; by the estimates, switch {_switch_text(self.switch, self.unit)}" if self.switch else ""
            return f"no interval{seen}"
        both = [p for p in self.per_load if p.monolith is not None and p.microservices is not None]
        if not both:
            return "no load at which both architectures have a configuration measured"
        if not any(_meets(p.monolith) or _meets(p.microservices) for p in both):
            most = {a: max(getattr(p, a).most_measured for p in both) for a in ARCHITECTURES}
            measured = sum(getattr(p, a).measured for p in both for a in ARCHITECTURES)
            flagged = sum(getattr(p, a).flagged for p in both for a in ARCHITECTURES)
            why = (f"; {flagged} of the {measured} configurations measured were flagged (farm results: "
                   "generator_busy, rate_saturated, load_stalled, load_mismatch), and a flagged one never meets it: "
                   "measure them again on a quieter generator host") if flagged else ""
            return (f"neither architecture meets the SLO at any load measured (configurations up to cost "
                    f"{_num(most['monolith'])} for the monolith, {_num(most['microservices'])} for microservices)"
                    f"{why}; raise search.max_cost or measure lower loads")
        if any(p.sign < 0 for p in both) and any(p.sign > 0 for p in both):
            return (f"the loads disagree: {self._where()}; the cost curves cross both ways, so there is no one "
                    "switch point")
        return (f"{self._where()}: the inconclusive loads need more repetitions (or, where neither architecture "
                "meets the SLO, a higher search.max_cost)")

    def as_json(self) -> dict[str, Any]:
        """The entry of ``cost_benefit`` in `farm report --format json`."""
        return {"cache": self.cache, "outcome": self.outcome, "description": self.describe(),
                "switch": None if self.switch is None else {"at": self.switch.at, "low": self.switch.low,
                                                            "high": self.switch.high},
                "unit": self.unit, "slo_p95_ms": self.slo_ms, "repetitions": self.repetitions,
                "indicative": self.indicative,
                "price": None if self.price is None else {"per_unit_hour": self.price.per_unit_hour,
                                                          "currency": self.price.currency},
                "per_load": [{"load": _level(p.load), "classification": _CLASS[p.sign],
                              **{a: (None if c is None else c.as_json(self.price))
                                 for a, c in (("monolith", p.monolith), ("microservices", p.microservices))}}
                             for p in self.per_load]}


_CLASS = {-1: "microservices cheaper", 1: "monolith cheaper", 0: "inconclusive"}


def _switch_text(s: Switch, unit: str) -> str:
    """``at ~13.3 users (95% interval 10–20)``, or ``at or below 20 users`` when unbounded below."""
    if s.low is None or s.at is None:
        return f"at or below {_num(s.high)} {unit}"
    return f"at ~{_num(s.at)} {unit} (95% interval {_num(s.low)}–{_num(s.high)})"


def _num(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def _level(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _cost(c: Cheapest) -> str:
    if c.cost is None:
        return f"no configuration up to cost {_num(c.most_measured)}"
    return f"cost {_num(c.cost)}"


def cost_benefit(cells: pd.DataFrame, hist: pd.DataFrame | None, *, slo_ms: float | None,
                 max_error_ratio: float = 0.01, costs: Mapping[str, float] | None = None,
                 metric: str = "p95_ms", unit: str = UNIT, price: Price | None = None) -> list[CostBenefit]:
    """The cost answer of every comparison measured with both architectures (empty without an SLO latency)."""
    if slo_ms is None:
        return []
    points = config_points(cells, hist, slo_ms=slo_ms, max_error_ratio=max_error_ratio, costs=costs,
                           metric=metric)
    return answers(points, slo_ms=slo_ms, metric=metric, unit=unit, price=price)


def answers(points: pd.DataFrame, *, slo_ms: float | None, metric: str = "p95_ms",
            unit: str = UNIT, price: Price | None = None) -> list[CostBenefit]:
    """The cost answer of every comparison in `config_points` measured with both architectures."""
    if slo_ms is None or points.empty or not set(ARCHITECTURES) <= set(points["architecture"]):
        return []
    out = []
    for label, part in points.groupby("label", sort=True):
        if not set(ARCHITECTURES) <= set(part["architecture"]):
            continue
        out.append(replace(_answer(str(label), part, metric, unit, slo_ms), price=price))
    return out


def cheapest(part: pd.DataFrame, metric: str = "p95_ms") -> Cheapest:
    """The cheapest configuration meeting the SLO among one architecture's points at one load."""
    part = part.sort_values(["cost", metric])
    meets = part[part["meets"].astype(bool)]
    may = part[part["may_meet"].astype(bool)]
    best = meets.iloc[0] if not meets.empty else None
    cost_low = float(may["cost"].min()) if not may.empty else None
    if best is not None and cost_low is not None:
        cost_low = min(cost_low, float(best["cost"]))
    reps = int(part["n"].min())
    return Cheapest(
        cost=None if best is None else float(best["cost"]), cost_low=cost_low,
        replicas=None if best is None else dict(best["replicas"]),
        p95_ms=None if best is None else float(best[metric]),
        p95_low=None if best is None or pd.isna(best[f"{metric}_lo"]) else float(best[f"{metric}_lo"]),
        p95_high=None if best is None or pd.isna(best[f"{metric}_hi"]) else float(best[f"{metric}_hi"]),
        repetitions=reps, indicative=bool(part["indicative"].any()), measured=len(part),
        most_measured=float(part["cost"].max()),
        rps=None if best is None or "rps" not in best or pd.isna(best["rps"]) else float(best["rps"]),
        flagged=int(part["flagged"].astype(bool).sum()) if "flagged" in part.columns else 0)


def cheaper(a: Cheapest, b: Cheapest) -> bool:
    """Whether ``a`` meets the SLO for significantly less than ``b``: below the low end of b's interval, or b has
    no configuration that may meet it up to a's cost."""
    if a.cost is None:
        return False
    if b.cost_low is None:
        return a.cost <= b.most_measured
    return a.cost < b.cost_low


def _answer(label: str, part: pd.DataFrame, metric: str, unit: str, slo_ms: float) -> CostBenefit:
    loads = sorted(part["load"].unique(), key=float)
    per_load = []
    for load in loads:
        here = part[part["load"] == load]
        found = {a: cheapest(here[here["architecture"] == a], metric) if (here["architecture"] == a).any() else None
                 for a in ARCHITECTURES}
        mono, micro = found["monolith"], found["microservices"]
        sign = 0
        if mono is not None and micro is not None:
            sign = -1 if cheaper(micro, mono) else 1 if cheaper(mono, micro) else 0
        per_load.append(LoadCost(float(load), mono, micro, sign))
    both = [p for p in per_load if p.monolith is not None and p.microservices is not None]
    reps = min((min(p.monolith.repetitions, p.microservices.repetitions) for p in both  # type: ignore[union-attr]
                ), default=0)
    base = CostBenefit(label, NOT_ENOUGH, reps, per_load, None, unit, slo_ms)
    if not both:
        return base
    outcome, switch = outcome_of(both)
    if reps < MIN_REPETITIONS:  # the estimates' answer, said as such: there is no interval
        return CostBenefit(label, NOT_ENOUGH, reps, per_load, switch, unit, slo_ms)
    return CostBenefit(label, outcome, reps, per_load, switch, unit, slo_ms)


def outcome_of(points: list[LoadCost]) -> tuple[str, Switch | None]:
    """The outcome word and switch point of loads (ascending) at which both architectures were measured.

    "… cheaper throughout" needs every load significant; a switch needs a load from which microservices are
    significantly cheaper and never significantly dearer above it, with a load below it. Anything else that is
    not "no significant difference" at every load is "not enough data", and the sentence says why: neither
    architecture meets the SLO anywhere, some loads are inconclusive, or the significant loads disagree (the
    cost curves cross both ways: no one switch point)."""
    signs = [p.sign for p in points]
    if not any(_meets(p.monolith) or _meets(p.microservices) for p in points):
        return NOT_ENOUGH, None  # neither architecture meets the SLO at any load: nothing to compare
    if all(s == 0 for s in signs):
        return NO_DIFFERENCE, None
    if all(s < 0 for s in signs):
        return MICRO_CHEAPER, None
    if all(s > 0 for s in signs):
        return MONO_CHEAPER, None
    # The lowest load from which microservices are significantly cheaper and never significantly dearer above.
    k = next((i for i, s in enumerate(signs) if s < 0 and all(t <= 0 for t in signs[i:])), None)
    if k is None or k == 0 or any(s > 0 for s in signs[k:]):
        return NOT_ENOUGH, None
    return SWITCH, _switch(points, k)


def _switch(points: list[LoadCost], k: int) -> Switch:
    """The switch point below load k: its interval from the last load below k at which the monolith was no dearer
    by the estimates (unbounded below when no load shows that), its estimate where the cost difference changes
    sign, linear between that load and the next one up."""
    high = points[k].load
    j = max((i for i in range(k) if _monolith_no_dearer(points[i])), default=None)
    if j is None:  # nothing measured shows the monolith ever cheaper: the switch is at or below load k
        return Switch(None, None, float(high))
    low, up = points[j].load, points[j + 1].load
    before, after = points[j].difference, points[j + 1].difference
    if before is not None and after is not None and before >= 0 > after:
        at = low + before / (before - after) * (up - low)
    else:
        at = (low + up) / 2
    return Switch(float(at), float(low), float(high))


def _meets(c: Cheapest | None) -> bool:
    return c is not None and c.cost is not None


def _monolith_no_dearer(point: LoadCost) -> bool:
    """Whether the monolith meets the SLO for no more than microservices at this load, by the estimates alone."""
    m, s = point.monolith, point.microservices
    if m is None or m.cost is None:
        return False
    return s is None or s.cost is None or m.cost <= s.cost
