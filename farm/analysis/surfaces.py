"""Surfaces: every metric per point (architecture × cache × instances × users), with 95% confidence intervals.

Percentiles at a point come from the merged response-time histogram of all its repetitions (never an average of
percentiles). Their interval is a t-interval over repetitions when there are two or more, and the distribution-
free order-statistic interval of the merged histogram when there is one repetition (sampling uncertainty only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

POINT = ("architecture", "cache", "instances", "users")
PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
Z95 = 1.959963984540054


def point_keys(frame: pd.DataFrame, by_host: bool = False) -> list[str]:
    """The columns that identify a point in this frame (those of POINT present, plus host if asked)."""
    keys = [k for k in POINT if k in frame.columns]
    return [*keys, "host"] if by_host and "host" in frame.columns else keys


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells that count: done, and whose generator did not saturate."""
    if frame.empty:
        return frame
    saturated = frame.get("generator_saturated", pd.Series(False, index=frame.index))
    return frame[(frame["status"] == "done") & ~saturated.astype("boolean").fillna(False).astype(bool)]


def excluded(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells left out of the surfaces, with the reason: failed, saturated generator, skipped, not run."""
    if frame.empty:
        return frame.assign(reason=pd.Series(dtype=str))
    left = frame[~frame.index.isin(usable(frame).index)]
    reason = np.where(left["status"] == "done", "generator saturated", left["status"])
    return left.assign(reason=reason)


def _t_half_width(std: pd.Series, n: pd.Series) -> pd.Series:
    t = pd.Series(np.nan, index=n.index)
    many = n >= 2
    t[many] = stats.t.ppf(0.975, n[many] - 1)
    return t * std / np.sqrt(n)


def merged_quantiles(hist: pd.DataFrame, point_of_cell: pd.Series) -> pd.DataFrame:
    """Per point: percentiles of the merged histogram and their order-statistic 95% bounds.

    ``hist`` has columns cell_id, ms, count; ``point_of_cell`` maps cell_id to a point id.
    """
    data = hist.assign(point=hist["cell_id"].map(point_of_cell)).dropna(subset=["point"])
    merged = data.groupby(["point", "ms"], sort=True)["count"].sum().reset_index()
    merged["cum"] = merged.groupby("point")["count"].cumsum()
    merged["below"] = merged["cum"] - merged["count"]
    total = merged.groupby("point")["count"].sum()
    merged["total"] = merged["point"].map(total)
    out = pd.DataFrame(index=total.index)
    for column, q in PERCENTILES.items():
        # Locust's rule: the largest bucket with at most floor(total*q) samples below it.
        wanted = np.floor(merged["total"] * q)
        out[column] = merged[merged["below"] <= wanted].groupby("point")["ms"].max()
        spread = Z95 * np.sqrt(merged["total"] * q * (1 - q))
        for side, rank in (("lo", merged["total"] * q - spread), ("hi", merged["total"] * q + spread)):
            rank = rank.clip(lower=1).where(rank <= merged["total"], merged["total"])
            out[f"{column}_{side}_os"] = merged[merged["cum"] >= rank].groupby("point")["ms"].min()
    out["samples"] = total
    return out


def surfaces(cells: pd.DataFrame, hist: pd.DataFrame | None = None, by_host: bool = False) -> pd.DataFrame:
    """One row per point: repetitions, then each metric with ``_lo`` / ``_hi`` bounds of its 95% interval."""
    data = usable(cells).copy()
    keys = point_keys(cells, by_host)
    if data.empty:
        return pd.DataFrame(columns=[*keys, "n"])
    data["error_ratio"] = data["failures"] / data["requests"].where(data["requests"] > 0)
    looked = data["cache_hits"].astype(float) + data["cache_misses"].astype(float)
    data["cache_hit_ratio"] = data["cache_hits"].astype(float) / looked.where(looked > 0)
    grouped = data.groupby(keys, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for column in ("rps", "error_ratio", "cache_hit_ratio", *PERCENTILES):
        values = grouped[column].agg(["mean", "std"])
        half = _t_half_width(values["std"], out["n"])
        out[column] = values["mean"]
        out[f"{column}_lo"] = values["mean"] - half
        out[f"{column}_hi"] = values["mean"] + half
    totals = grouped[["requests", "failures"]].sum()
    out["error_ratio"] = totals["failures"] / totals["requests"].where(totals["requests"] > 0)
    if hist is not None and not hist.empty:
        _use_merged_histograms(out, data, keys, hist)
    return out.reset_index()


def _use_merged_histograms(out: pd.DataFrame, data: pd.DataFrame, keys: list[str], hist: pd.DataFrame) -> None:
    point_ids = pd.Series(range(len(out)), index=out.index)
    cell_point = data.set_index(keys).index.map(point_ids.to_dict())
    point_of_cell = pd.Series(np.asarray(cell_point), index=data["id"].to_numpy())
    quantiles = merged_quantiles(hist, point_of_cell)
    for column in PERCENTILES:
        merged = pd.Series(quantiles[column].reindex(range(len(out))).to_numpy(), index=out.index)
        have = merged.notna()
        shift = merged - out[column]
        out.loc[have, column] = merged[have]
        # Repetitions give the t-interval (moved to the merged estimate); one repetition, the sampling interval.
        many = have & (out["n"] >= 2)
        out.loc[many, f"{column}_lo"] += shift[many]
        out.loc[many, f"{column}_hi"] += shift[many]
        one = have & (out["n"] < 2)
        for side in ("lo", "hi"):
            os_bound = pd.Series(quantiles[f"{column}_{side}_os"].reindex(range(len(out))).to_numpy(),
                                 index=out.index)
            out.loc[one, f"{column}_{side}"] = os_bound[one]
