"""Capacity search as a pure function: given the cells measured so far, the next probes, or why each is done.

A *trajectory* is one (architecture, cache setting and other stack parameters, load). It starts at one replica of
every scalable service (the plan's own cells, step 0) and, once every repetition of its latest configuration is
finished, takes one step: if that configuration meets the SLO (`farm.analysis.configs`: the upper bound of its
p95 interval within it; one repetition: its estimate) the trajectory is done — when at least min(repetitions, 2)
of its repetitions are usable: a sweep that asked for an interval never stops on an estimate because the other
repetitions were excluded (the trajectory is blocked instead); else its bottleneck gets one more
replica — the scalable service with the highest share of the SUT's CPU per unit of its capacity (replicas × cost
per replica) in that measurement (its cells' cost breakdown), or ``instances`` for a configuration that runs one
scalable service (the monolith), or every service when no share was measured — unless that next configuration
would cost more than ``search.max_cost``. A service's share of the CPU alone does not fall as replicas are added
(the work is the same); its share per unit of capacity does, as its utilisation would.

Each probe is an ordinary cell whose ``probe`` field says why it was measured. Probes of the same configuration
at several loads share a provisioning (a group per repetition, as the plan does). Group and cell ids depend only
on the sweep, the configuration, the repetition and the loads, so computing the next step twice (the worker that
finished a group and `farm run` watching it) adds it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from farm.analysis.configs import comparison_label, config_of, config_points, replica_keys
from farm.analysis.frame import cells_frame
from farm.compare import Comparison
from farm.life import ACTIVE, CellStatus
from farm.plan import Cell, Group, cell_id, group_id, per_repetition
from farm.spec import SweepSpec, load_axis
from farm.stacks.manifest import Scalar, StackManifest
from farm.stacks.scaling import declared_cost, is_replica_key, replica_key, replicas_of

WAITING, MEETS, BUDGET, BLOCKED = "waiting", "meets the SLO", "budget", "blocked"


@dataclass(frozen=True)
class Probe:
    """A configuration to measure at one load, and why (stored with its cells)."""

    config: dict[str, Scalar]
    load: Scalar
    why: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """Where one trajectory stands: waiting for its cells, done (and why), or its next probe."""

    trajectory: tuple[str, Scalar]  # (its base configuration as text, its load)
    state: str  # WAITING, MEETS, BUDGET, BLOCKED, or "probe"
    text: str
    probe: Probe | None = None


@dataclass(frozen=True)
class Step:
    """The search's next step over a whole sweep."""

    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def probes(self) -> list[Probe]:
        """The probes to add now."""
        return [o.probe for o in self.outcomes if o.probe is not None]

    @property
    def done(self) -> bool:
        """Whether no trajectory waits for cells or has a probe to add."""
        return all(o.state in (MEETS, BUDGET, BLOCKED) for o in self.outcomes)


def _base(params: dict[str, Any], axis: str) -> dict[str, Any]:
    """A cell's trajectory configuration: everything but the load and the replica counts."""
    return {k: v for k, v in params.items() if k != axis and k != "instances" and not is_replica_key(k)}


def _config(params: dict[str, Any], axis: str) -> dict[str, Scalar]:
    return {k: v for k, v in params.items() if k != axis}


def next_step(records: Iterable[dict[str, Any]], hist: pd.DataFrame | None, spec: SweepSpec,
              manifest: StackManifest) -> Step:
    """The search's next step from a sweep's cells (`farm.analysis.records.cell_record` records) and histograms."""
    if spec.search is None or spec.slo is None:
        return Step()
    records = list(records)
    axis = load_axis(spec)
    trajectories: dict[tuple[str, Scalar], list[dict[str, Any]]] = {}
    for r in records:
        key = (json.dumps(_base(r["params"], axis), sort_keys=True, default=str), r["params"][axis])
        trajectories.setdefault(key, []).append(r)
    frame = cells_frame(records, spec.comparison)
    points = config_points(frame, hist, slo_ms=spec.slo.p95_ms, max_error_ratio=spec.slo.max_error_ratio) \
        if not frame.empty else pd.DataFrame()
    ids = {r["id"]: json.dumps(_config(r["params"], axis), sort_keys=True, default=str) for r in records}
    keys = replica_keys(frame)
    # Where each cell's point is in `points`: its comparison label and configuration, read off the whole frame.
    where = {cid: (label, json.dumps(config_of(row, keys))) for cid, label, row in
             zip(frame["id"], comparison_label(frame), frame[keys].to_dict("records"), strict=True)} \
        if not frame.empty else {}
    return Step([_decide(key, cells, points, ids, where, spec, manifest) for key, cells in trajectories.items()])


def _decide(key: tuple[str, Scalar], cells: list[dict[str, Any]], points: pd.DataFrame, ids: dict[str, str],
            where: dict[str, tuple[str, str]], spec: SweepSpec, manifest: StackManifest) -> Outcome:
    """One trajectory's next step."""
    by_config: dict[str, list[dict[str, Any]]] = {}
    for c in cells:
        by_config.setdefault(ids[c["id"]], []).append(c)
    costs = {k: declared_cost(manifest, json.loads(k))[0] or 0.0 for k in by_config}
    latest = max(by_config, key=lambda k: (costs[k], k))  # each step adds a replica: the latest costs most
    current = by_config[latest]
    config = json.loads(latest)
    unit = "req/s" if load_axis(spec) == "rate" else "users"
    label = f"{key[1]} {unit}, {_label(manifest, config, spec.comparison)}"
    if any(c["status"] in ACTIVE for c in current):
        return Outcome(key, WAITING, f"{label}: measuring")
    if any(c["status"] in (CellStatus.FAILED, CellStatus.CANCELLED) for c in current):
        return Outcome(key, BLOCKED, f"{label}: a probe did not finish (failed or cancelled); run the sweep again "
                                     "to retry it")
    point = _point(points, current, where, key[1], spec.comparison)
    slo = spec.slo.p95_ms if spec.slo is not None else None
    if point is None and not any(c["status"] == CellStatus.SKIPPED for c in current):
        return Outcome(key, BLOCKED, f"{label}: no usable measurement (the generator saturated)")
    usable, needed = (0 if point is None else int(point["n"])), min(spec.repetitions, 2)
    if point is not None and bool(point["meets"]) and usable < needed:
        # Repetitions were excluded (a saturated generator): one left has no interval, and an estimate cannot stop
        # a search that asked for one.
        return Outcome(key, BLOCKED, f"{label}: within the SLO by the estimate, but only {usable} of "
                                     f"{spec.repetitions} repetitions usable (the others excluded: the generator "
                                     "saturated): no interval to stop on; measure it again with the generator on "
                                     "its own cores")
    if point is not None and bool(point["meets"]):
        return Outcome(key, MEETS, f"{label}: meets the SLO: p95 {_p95(point)} ≤ {slo:g} ms at cost "
                                   f"{costs[latest]:g}")
    step = int(max((c.get("probe") or {}).get("step", 0) for c in current)) + 1
    service, shares = _bottleneck(current, config, manifest)
    if service is None and len(replicas_of(manifest, config)) <= 1:
        shares = None  # one scalable service (the monolith): instances is the only way to scale
    following = _scaled(config, service, manifest)
    cost = declared_cost(manifest, following)[0] or 0.0
    missed = _missed(point, spec)
    budget = spec.search.max_cost if spec.search is not None else float("inf")
    if cost > budget:
        return Outcome(key, BUDGET, f"{label}: {missed}; the next step ({_what(service)}) would cost {cost:g} > "
                                    f"max_cost {budget:g}")
    text = f"{missed} at {label}; {_what(service, shares)} → cost {cost:g}"
    why = {"step": step, "from": _replicas(manifest, config), "scaled": service or "instances", "shares": shares,
           "cost": cost, "why": text}
    return Outcome(key, "probe", text, Probe(following, key[1], why))


def _point(points: pd.DataFrame, cells: list[dict[str, Any]], where: dict[str, tuple[str, str]],
           load: Scalar, compare: Comparison) -> pd.Series | None:
    """The measured point of these cells (one configuration at one load), or None when none was usable."""
    if points.empty:
        return None
    label, config = where[cells[0]["id"]]
    architecture = compare.roles(cells[0]["params"]).get("architecture", "-")
    here = points[(points["label"] == label) & (points["architecture"] == architecture)
                  & (points["config"] == config) & (points["load"].astype(float) == float(load))]
    return None if here.empty else here.iloc[0]


def _missed(point: pd.Series | None, spec: SweepSpec) -> str:
    """Why a configuration did not meet the SLO, in a few words."""
    if point is None:
        return "saturated (skipped by stop_when)"
    if not _errors_ok(point, spec):
        return f"error ratio {point['error_ratio']:.1%} over the SLO's"
    slo = spec.slo.p95_ms if spec.slo is not None else None
    high = point["p95_ms_hi"] if not pd.isna(point["p95_ms_hi"]) else point["p95_ms"]
    if slo is not None and high > slo:
        return f"p95 {_p95(point)} over {slo:g} ms"
    return f"p95 {_p95(point)} within {slo:g} ms but flagged ({point['flags']}): a flagged cell cannot vouch for it"


def _errors_ok(point: pd.Series, spec: SweepSpec) -> bool:
    limit = spec.slo.max_error_ratio if spec.slo is not None else 0.01
    return bool(pd.isna(point["error_ratio"]) or point["error_ratio"] <= limit)


def _p95(point: pd.Series) -> str:
    low, high = point.get("p95_ms_lo"), point.get("p95_ms_hi")
    if low is None or pd.isna(low):
        return f"{point['p95_ms']:.0f} ms (one repetition: indicative)"
    return f"{point['p95_ms']:.0f} ms (95% interval {low:.0f}–{high:.0f})"


def _bottleneck(cells: list[dict[str, Any]], config: dict[str, Any],
                manifest: StackManifest) -> tuple[str | None, dict[str, float] | None]:
    """The scalable service to scale, and each one's load: its share of the SUT's CPU per unit of capacity (per
    replica × cost per replica: a service at 40% of the CPU on two replicas is less pressed than one at 30% on
    one), mean over repetitions. None: ``instances`` (one scalable service, or no share measured)."""
    running = replicas_of(manifest, config)
    if len(running) <= 1:
        return None, {}
    sums: dict[str, list[float]] = {}
    for c in cells:
        for service, entry in (c.get("cost_breakdown") or {}).items():
            if service not in running or not isinstance(entry, dict) or entry.get("cpu_share") is None:
                continue
            capacity = float(entry.get("cost") or running[service])  # replicas × cost per replica
            sums.setdefault(service, []).append(float(entry["cpu_share"]) / max(capacity, 1e-9))
    shares = {s: round(sum(v) / len(v), 4) for s, v in sums.items()}
    if not shares:
        return None, {}
    return max(shares, key=lambda s: (shares[s], s)), shares


def _scaled(config: dict[str, Any], service: str | None, manifest: StackManifest) -> dict[str, Scalar]:
    """The configuration with one more replica of ``service`` (None: one more of every scalable service)."""
    out = dict(config)
    if service is None:
        out["instances"] = int(config.get("instances", 1)) + 1
        for key in [k for k in config if is_replica_key(k)]:
            out[key] = int(config[key]) + 1
        return out
    out[replica_key(service)] = replicas_of(manifest, config)[service] + 1
    return out


def _what(service: str | None, shares: dict[str, float] | None = None) -> str:
    if service is None:
        return "one more instance" + ("" if shares is None else " (no CPU share measured)" if shares == {} else "")
    share = f" (highest CPU share per unit of capacity, {shares[service]:.0%})" if shares else ""
    return f"one more {service} replica{share}"


def _replicas(manifest: StackManifest, config: dict[str, Any]) -> dict[str, int]:
    return replicas_of(manifest, config)


def _label(manifest: StackManifest, config: dict[str, Any], compare: Comparison) -> str:
    """E.g. ``microservices, cache none: catalog×2 gateway×1 …``."""
    head = ", ".join(str(v) if k == "architecture" else f"{k} {v}" for k, v in compare.roles(config).items()
                     if k in ("architecture", "cache"))
    return f"{head}: " + " ".join(f"{s}×{n}" for s, n in replicas_of(manifest, config).items())


def probe_groups(spec: SweepSpec, probes: list[Probe], first_position: int = 0) -> tuple[list[Group], dict[str, Any]]:
    """Groups of new probe cells: one per configuration (and repetition, when each has its own provisioning),
    holding every load that probes it; and each new cell's ``probe`` field by cell id."""
    axis = load_axis(spec)
    by_config: dict[str, list[Probe]] = {}
    for p in probes:
        by_config.setdefault(json.dumps(p.config, sort_keys=True, default=str), []).append(p)
    groups, why = [], {}
    order = first_position
    own = per_repetition(spec)
    reps = list(range(1, spec.repetitions + 1))
    for _key, found in sorted(by_config.items()):
        found.sort(key=lambda p: float(p.load))
        config = found[0].config
        loads = [p.load for p in found]
        for repetitions in ([[r] for r in reps] if own else [reps]):
            # The loads are part of the id: the same configuration probed later at other loads is a new group.
            marked = {**config, "probe_loads": ",".join(str(x) for x in loads)}
            gid = group_id(spec.name, marked, repetitions[0] if own else None)
            cells = []
            for rep in repetitions:
                for p in found:
                    params = {**config, axis: p.load}
                    cid = cell_id(spec.name, params, rep)
                    cells.append(Cell(cid, gid, params, rep, order))
                    why[cid] = p.why
                    order += 1
            groups.append(Group(gid, config, tuple(cells)))
    return groups, why
