"""A stored sweep's spec as the read side uses it (report, commands, `farm serve`, dispatch): typed, read once.

The store keeps a sweep's spec as its model dump (`farm.spec.SweepSpec`), or for an imported sweep the facts the
import knew. `StoredSpec` reads that dump in one place; its readers never ``.get`` a key of it. A worker, which
needs the whole spec, rebuilds it instead (`farm.stored.stored_sweep`). Free of pydantic: the lean report path
reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farm.compare import Comparison, comparison_of
from farm.load_level import LoadKind, load_kind


@dataclass(frozen=True)
class StoredSpec:
    """What the read side knows of a stored sweep's spec."""

    matrix: dict[str, list[Any]] | None  # None for an imported sweep
    repetitions: int = 1
    targets: tuple[str, ...] = ()
    slo: dict[str, Any] | None = None
    search: bool = False
    comparison: Comparison = field(default_factory=Comparison)
    load: LoadKind = "users"
    dump: Mapping[str, Any] = field(default_factory=dict, repr=False)  # for `farm.analysis.cost.sweep_price`

    def slo_value(self, key: str, default: float | None = None) -> Any:
        """One figure of the sweep's SLO (``p95_ms``, ``max_error_ratio`` …) as stored, or ``default``."""
        return (self.slo or {}).get(key, default)


def stored_spec(dump: Mapping[str, Any] | None) -> StoredSpec:
    """The stored spec (a model dump) read into a `StoredSpec`."""
    dump = dict(dump or {})
    matrix = dump.get("matrix")
    matrix = dict(matrix) if isinstance(matrix, dict) else None
    return StoredSpec(matrix=matrix, repetitions=int(dump.get("repetitions") or 1),
                       targets=tuple(dump.get("targets") or ()), slo=dump.get("slo") or None,
                       search=bool(dump.get("search")), comparison=comparison_of(dump), load=load_kind(matrix),
                       dump=dump)
