"""Where a report's numbers come from; its own module so that `farm report --format json` loads no renderer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """Where the numbers come from: the sweep as submitted, the hosts, and when it ran."""

    name: str
    stack: str
    spec_text: str
    hosts: dict[str, dict[str, Any]]
    started: datetime | None
    finished: datetime | None
    slo: dict[str, Any] | None
    warnings: list[dict[str, Any]] = field(default_factory=list)  # {warning, cells}: metrics off the contract
