"""Declared cost into money: what serving a million requests costs a configuration at the rate it sustained.

A configuration of declared cost C (in the stack's ``cost_unit``, e.g. cores) priced at P per unit-hour costs
C × P per hour; at a throughput of X requests/s a million requests take 10⁶ / X seconds, so they cost
C × P × 10⁶ / (3600 × X). A sweep's optional ``price: {per_unit_hour: 0.04, currency: USD}`` gives P.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class StoredPrice:
    """A stored sweep's ``price:`` (validated at submission by `farm.sweep_scaling.Price`): read without pydantic,
    so that the lean report path stays light."""

    per_unit_hour: float
    currency: str = "USD"


def sweep_price(spec: dict[str, Any] | None) -> StoredPrice | None:
    """The price of a stored sweep spec (its ``price:``), or None when it has none."""
    raw = (spec or {}).get("price")
    if not isinstance(raw, dict) or raw.get("per_unit_hour") is None:
        return None
    return StoredPrice(float(raw["per_unit_hour"]), str(raw.get("currency") or "USD"))
