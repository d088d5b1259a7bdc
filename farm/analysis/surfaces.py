"""Surfaces: every metric per point (architecture × cache × instances × users), with 95% intervals.

Percentiles at a point come from the merged response-time histogram of all its repetitions (never an average of
percentiles); every interval is the bootstrap over repetitions of `farm.analysis.bootstrap` (seeded, so a report
is reproducible), never narrower than the histogram's bucket. A point with one repetition has no interval (NaN
bounds): nothing independent to resample. Below `FULL_REPETITIONS` a point is *indicative*.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farm.analysis.bootstrap import (
    MEANS,
    PERCENTILES,
    RESAMPLES,
    SEED,
    PointDraws,
    bucket_width,
    interval,
    metric_bounds,
    point_draws,
)
from farm.life import CellStatus

POINT = ("architecture", "cache", "instances", "users")
FULL_REPETITIONS = 3  # fewer repetitions give an indicative answer
# Results, not faults: a cell that fell short of its offered rate, whose host's CPU saturated, whose users stalled
# or whose load broke Little's law stays in the surface and its point carries the flag (a saturated generator is a
# fault: its cell is excluded, see `usable`). A stalled point's latency is a lower bound: it never wins, nor does
# one whose generator waited for a CPU (generator_busy).
FLAGS = ("rate_saturated", "host_saturated", "generator_busy", "load_stalled", "load_mismatch")
BUSY_PCT = 90.0  # farm.cpusets.SATURATED_PCT: a CPU set this busy is saturated
# The generator's mean run-queue wait per time slice (farm.load.schedwait) from which it measured itself: each
# timing it took then carries about this much of its own waiting, the resolution of Locust's histogram below 100 ms.
WAIT_MS = 1.0


def generator_busy(frame: pd.DataFrame) -> pd.Series:
    """Per cell, whether the generator measured itself: it waited for a CPU, its mean run-queue wait per time slice
    at least WAIT_MS (on its own host, whether the stack ran there or on a SUT host). A cell stored before the wait
    was measured: its host saturated on the generator's side, ``host_saturated`` with the generator's CPU set (or,
    not pinned, the whole host) at least BUSY_PCT busy. A busy set whose work gave way to the generator (it barely
    waited) did not distort its timings; a stack set saturated alone is the system's limit, a result."""
    def column(name: str) -> pd.Series:
        values = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        return pd.to_numeric(values, errors="coerce")

    host = frame.get("host_saturated", pd.Series(False, index=frame.index)).astype("boolean").fillna(False)
    own = column("generator_set_cpu_pct")
    busy = host.astype(bool) & ((own >= BUSY_PCT) | (own.isna() & (column("host_cpu_pct") >= BUSY_PCT)))
    waited = column("generator_wait_ms")
    return (waited >= WAIT_MS) | (waited.isna() & busy)


def point_keys(frame: pd.DataFrame, by_host: bool = False) -> list[str]:
    """The columns that identify a point in this frame (those of POINT present, plus host if asked)."""
    keys = [k for k in POINT if k in frame.columns]
    return [*keys, "host"] if by_host and "host" in frame.columns else keys


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells that count: done, and whose generator did not saturate."""
    if frame.empty:
        return frame
    saturated = frame.get("generator_saturated", pd.Series(False, index=frame.index))
    return frame[(frame["status"] == CellStatus.DONE) & ~saturated.astype("boolean").fillna(False).astype(bool)]


def excluded(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells left out of the surfaces, with the reason: failed, saturated generator, skipped, not run."""
    if frame.empty:
        return frame.assign(reason=pd.Series(dtype=str))
    left = frame[~frame.index.isin(usable(frame).index)]
    if "id" in left.columns:  # a cell repeated for each per-service replica count it is compared at, listed once
        left = left.drop_duplicates("id")
    reason = np.where(left["status"] == CellStatus.DONE, "generator saturated", left["status"])
    return left.assign(reason=reason)


def surfaces(cells: pd.DataFrame, hist: pd.DataFrame | None = None, by_host: bool = False) -> pd.DataFrame:
    """One row per point: repetitions ``n``, then each metric with ``_lo`` / ``_hi`` bounds of its 95% interval."""
    return surfaces_with_draws(cells, hist, by_host)[0]


def surfaces_with_draws(cells: pd.DataFrame, hist: pd.DataFrame | None = None, by_host: bool = False, *,
                        resamples: int = RESAMPLES, seed: int = SEED) -> tuple[pd.DataFrame, PointDraws | None]:
    """The surface and, aligned with its rows, each point's bootstrap draws (for the verdicts)."""
    data = usable(cells).copy()
    keys = point_keys(cells, by_host)
    if data.empty:
        return pd.DataFrame(columns=[*keys, "n"]), None
    data["generator_busy"] = generator_busy(data)
    looked = data["cache_hits"].astype(float) + data["cache_misses"].astype(float)
    data["cache_hit_ratio"] = data["cache_hits"].astype(float) / looked.where(looked > 0)
    grouped = data.groupby(keys, dropna=False, sort=True)
    out = grouped.size().rename("n").to_frame()
    for flag in FLAGS:  # a point is flagged when any of its repetitions was
        if flag in data.columns:
            out[flag] = data[flag].astype("boolean").fillna(False).astype(bool).groupby(
                [data[k] for k in keys], dropna=False, sort=True).any()
    point = grouped.ngroup().to_numpy()
    found = point_draws(data.reset_index(drop=True), point, len(out), hist, resamples=resamples, seed=seed)
    many = out["n"].to_numpy() >= 2
    for column in (*MEANS, "error_ratio", *PERCENTILES):
        estimate = found.estimates[column].to_numpy()
        floor = bucket_width(estimate) / 2 if column in PERCENTILES else np.zeros(len(out))
        low, high = interval(estimate, found.draws[column], floor, out["n"].to_numpy(), metric_bounds(column))
        out[column] = estimate
        out[f"{column}_lo"] = np.where(many, low, np.nan)
        out[f"{column}_hi"] = np.where(many, high, np.nan)
    out["indicative"] = out["n"] < FULL_REPETITIONS
    return out.reset_index(), found
