"""Across machines: results per host, and whether hosts that measured the same point agree."""

from __future__ import annotations

import pandas as pd


def host_agreement(by_host: pd.DataFrame, metric: str = "p95_ms", tolerance: float = 0.25) -> pd.DataFrame:
    """Per point measured on two or more hosts: the spread of ``metric`` and whether hosts agree.

    Hosts agree at a point when their 95% intervals overlap, or (without intervals) when they differ by at most
    ``tolerance`` of the smaller value.
    """
    keys = [k for k in ("architecture", "cache", "instances", "users") if k in by_host.columns]
    rows = []
    for point, part in by_host.groupby(keys, sort=True):
        if part["host"].nunique() < 2:
            continue
        low, high = part[metric].min(), part[metric].max()
        if part[f"{metric}_lo"].notna().all() and part[f"{metric}_hi"].notna().all():
            agree = bool(part[f"{metric}_lo"].max() <= part[f"{metric}_hi"].min())
        else:
            agree = bool(high <= low * (1 + tolerance))
        rows.append({**dict(zip(keys, point, strict=True)), "hosts": part["host"].nunique(),
                     f"{metric}_min": low, f"{metric}_max": high, "agree": agree})
    return pd.DataFrame(rows)
