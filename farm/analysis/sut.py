"""What the system under test spent: CPU per request on its SUT host, per configuration and load."""

from __future__ import annotations

import pandas as pd

from farm.life import CellStatus

KEYS = ["architecture", "cache", "instances", "users"]


def sut_cost(cells: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and load: the SUT host's CPU ms per request and mean CPU %, from done cells that ran on
    a SUT host; empty when none did. CPU per request is the price of an architecture: microservices pay for
    their extra hops even where their latency wins."""
    if "sut_cpu_s" not in cells.columns or "requests" not in cells.columns:
        return pd.DataFrame()
    done = cells[(cells["status"] == CellStatus.DONE) & cells["sut_cpu_s"].notna() & (cells["requests"] > 0)]
    if done.empty:
        return pd.DataFrame()
    keys = [k for k in KEYS if k in done.columns]
    grouped = done.groupby(keys, sort=True)
    table = grouped.agg(requests=("requests", "sum"), sut_cpu_s=("sut_cpu_s", "sum"),
                        sut_cpu_pct=("sut_cpu_pct", "mean"), saturated=("sut_saturated", "sum"),
                        n=("requests", "size")).reset_index()
    table["cpu_ms_per_request"] = 1000 * table["sut_cpu_s"] / table["requests"]
    return table
