"""Declared cost into money: what serving a million requests costs a configuration at the rate it sustained.

A configuration of declared cost C (in the stack's ``cost_unit``, e.g. cores) priced at P per unit-hour costs
C × P per hour; at a throughput of X requests/s a million requests take 10⁶ / X seconds, so they cost
C × P × 10⁶ / (3600 × X). A sweep's optional ``price: {per_unit_hour: 0.04, currency: USD}`` gives P.
"""

from __future__ import annotations

import math
from typing import Any

from farm.sweep_scaling import Price

MILLION = 1_000_000


def per_million_requests(cost: float | None, rps: float | None, per_unit_hour: float) -> float | None:
    """Money per million requests of a configuration costing ``cost`` units at ``rps`` requests/s (None when
    either is unknown or the throughput is not positive)."""
    if cost is None or rps is None or not math.isfinite(cost) or not math.isfinite(rps) or rps <= 0:
        return None
    return cost * per_unit_hour * MILLION / (3600.0 * rps)


def per_hour(cost: float | None, per_unit_hour: float) -> float | None:
    """Money per hour of a configuration costing ``cost`` units."""
    return None if cost is None else cost * per_unit_hour


def sweep_price(spec: dict[str, Any] | None) -> Price | None:
    """The price of a stored sweep spec (its ``price:``), or None when it has none."""
    raw = (spec or {}).get("price")
    return Price.model_validate(raw) if isinstance(raw, dict) else None
