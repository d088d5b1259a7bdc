"""Configurations and whether each meets the SLO: one row per (comparison, architecture, configuration, load).

A *configuration* is a replica count per scalable service: ``instances`` (every scalable service, the monolith's
one) and any ``replicas.X`` parameter. Its declared cost is the cells' own ``cost`` (Σ replicas × cost per replica,
from the manifest) when they carry it, else instances × a cost per instance (`farm report --cost ARCH=N`,
default 1). Each point's p95 and its 95% interval are the one interval method of `farm.analysis.bootstrap`
(resampling whole repetitions, never narrower than Locust's bucket), computed by `surfaces_with_draws`.

A point *meets* the SLO when the upper bound of its p95 interval is within it (with one repetition there is no
interval: its estimate, and the point is indicative), the upper bound of its error ratio's interval is within the
SLO's, and none of its cells is flagged (short of its offered rate, its host saturated on the generator's side, load
stalled or off Little's law: such a measurement cannot vouch for a configuration). The stack's CPU set or the SUT
host saturated is a note, not a flag: the system at its limit is a result, judged by its latency. It *may meet* the
SLO while the lower bound is within it (both latency and error ratio): the cheapest configuration that may meet is
the low end of the cheapest cost's interval.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from farm.analysis.surfaces import FULL_REPETITIONS, generator_busy, surfaces_with_draws, usable
from farm.load_level import load_kind
from farm.stacks.scaling import PREFIX, is_replica_key

LOAD_KEYS = ("users", "rate")
NOT_COMPARED = ("architecture", "cache", "instances", *LOAD_KEYS, "repetition")
# Done cells kept in the answer but flagged: none of them vouches for a configuration (generator-side faults and
# lower-bound latencies). The stack's CPU set or the SUT host saturated is the system at its limit, a result: a
# note (NOTES), judged by its latency like any other measurement.
FLAGS = ("rate_saturated", "generator_busy", "load_stalled", "load_mismatch")
NOTES = ("host_saturated", "sut_saturated")


def replica_keys(cells: pd.DataFrame) -> list[str]:
    """The configuration's parameters present in these cells: instances, then replicas.X in name order."""
    params = cells.attrs.get("params") or list(cells.columns)
    return ["instances", *sorted(k for k in params if is_replica_key(str(k)) and k in cells.columns)]


def comparison_label(cells: pd.DataFrame) -> pd.Series:
    """Per cell, what it is compared within: its cache setting and any other varying stack parameter (never the
    architecture, the load or the configuration), e.g. ``local · delay_ms=50``."""
    cache = cells["cache"].astype(str) if "cache" in cells.columns else pd.Series("-", index=cells.index)
    params = cells.attrs.get("params") or []
    extra = [k for k in params if k not in NOT_COMPARED and not is_replica_key(str(k)) and k in cells.columns
             and cells[k].nunique(dropna=False) > 1]
    for key in extra:
        cache = cache + f" · {key}=" + cells[key].astype(str)
    return cache


def config_of(row: Mapping[str, Any], keys: list[str]) -> dict[str, int]:
    """A cell's configuration: instances and every replicas.X it sets (NaN: not set in this cell)."""
    out: dict[str, int] = {}
    for key in keys:
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            out[key] = int(value)
    return out


def config_label(config: Mapping[str, int]) -> str:
    """A configuration as short text: ``instances=1, replicas.catalog=2``."""
    return ", ".join(f"{k}={v}" for k, v in config.items())


def load_column(cells: pd.DataFrame) -> str:
    """The column holding the load levels: users, or the rate offered (open loop)."""
    return load_kind(cells.columns)


def _flags(data: pd.DataFrame, flags: tuple[str, ...] = FLAGS) -> pd.Series:
    """Per cell, the flags it carries (comma-separated; empty when none)."""
    names = pd.Series("", index=data.index, dtype=object)
    for flag in flags:
        if flag in data.columns:
            hit = data[flag].astype("boolean").fillna(False).astype(bool)
            names = names.where(~hit, names + "," + flag)
    return names.str.strip(",")


def _cost(data: pd.DataFrame, costs: Mapping[str, float]) -> pd.Series:
    """Each cell's declared cost: its own, else instances × the architecture's cost per instance."""
    fallback = data["instances"].astype(float) * data["architecture"].map(lambda a: costs.get(str(a), 1.0))
    if "cost" not in data.columns:
        return fallback
    return pd.to_numeric(data["cost"], errors="coerce").fillna(fallback)


def _replicas(data: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Each cell's replicas per scalable service (JSON text): from its cost breakdown when it has one (the
    ``replicas`` column of `cells_frame`), else its parameters."""
    from_params = pd.Series([json.dumps({k.removeprefix(PREFIX): v for k, v in config_of(r, keys).items()})
                             for r in data[keys].to_dict("records")], index=data.index, dtype=object)
    if "replicas" not in data.columns:
        return from_params
    return data["replicas"].where(data["replicas"].notna(), from_params)


def _joined(flags: pd.Series) -> str:
    """The flags of a point's cells, each once: ``host_saturated, load_stalled``."""
    return ", ".join(sorted({x for v in flags for x in v.split(",") if x}))


def config_points(cells: pd.DataFrame, hist: pd.DataFrame | None, *, slo_ms: float | None,
                  max_error_ratio: float = 0.01, costs: Mapping[str, float] | None = None,
                  metric: str = "p95_ms") -> pd.DataFrame:
    """One row per (label, architecture, config, load) measured by usable cells: n, cost, replicas, mean rps, the metric
    with its interval, error ratio, flagged, meets and may_meet (both False without an SLO latency)."""
    columns = ["label", "architecture", "config", "load", "n", "cost", "replicas", "rps", metric, f"{metric}_lo",
               f"{metric}_hi", "error_ratio", "error_ratio_lo", "error_ratio_hi", "flagged", "flags", "notes",
               "indicative", "meets", "may_meet"]
    if cells.empty or "architecture" not in cells.columns:
        return pd.DataFrame(columns=columns)
    keys = replica_keys(cells)
    axis = load_column(cells)
    data = usable(cells).copy()
    if data.empty:
        return pd.DataFrame(columns=columns)
    data["label"] = comparison_label(data)
    data["config"] = [json.dumps(config_of(r, keys)) for r in data[keys].to_dict("records")]
    data["_cost"] = _cost(data, costs or {})
    data["_replicas"] = _replicas(data, keys)
    data["generator_busy"] = generator_busy(data)
    data["_flags"], data["_notes"] = _flags(data), _flags(data, NOTES)
    # The surface's point keys carry the comparison label as the cache and the configuration as the instances.
    frame = data.assign(cache=data["label"], instances=data["config"], users=data[axis])
    frame.attrs = dict(cells.attrs)
    surface, _draws = surfaces_with_draws(frame, hist)
    if surface.empty:
        return pd.DataFrame(columns=columns)
    by_point = frame.groupby(["architecture", "cache", "instances", "users"], sort=True)
    extra = by_point.agg(cost=("_cost", "max"), replicas=("_replicas", "first"),
                         flags=("_flags", _joined), notes=("_notes", _joined),
                         ).reset_index()
    extra["flagged"] = extra["flags"] != ""
    out = surface.merge(extra, on=["architecture", "cache", "instances", "users"], how="left")
    out = out.rename(columns={"cache": "label", "instances": "config", "users": "load"})
    many = out["n"] >= 2
    high = out[f"{metric}_hi"].where(many, out[metric])
    low = out[f"{metric}_lo"].where(many, out[metric])
    # The error ratio is judged like the latency: meets on the upper bound of its interval, may meet on the lower.
    errors = out["error_ratio"].fillna(0)
    errors_ok = out["error_ratio_hi"].where(many, errors).fillna(errors) <= max_error_ratio
    errors_may = out["error_ratio_lo"].where(many, errors).fillna(errors) <= max_error_ratio
    if slo_ms is None:
        out["meets"], out["may_meet"] = False, False
    else:
        out["meets"] = (high <= slo_ms) & errors_ok & ~out["flagged"].astype(bool)
        out["may_meet"] = (low <= slo_ms) & errors_may
    out["indicative"] = out["n"] < FULL_REPETITIONS
    out["replicas"] = out["replicas"].map(json.loads)
    return out[columns].sort_values(["label", "architecture", "load", "cost"]).reset_index(drop=True)
