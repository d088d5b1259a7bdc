"""A sweep's cost side: its ``replicas.<service>`` matrix keys checked against the stack, and its ``price``.

``matrix: {replicas.catalog: [1, 2, 3]}`` varies one scalable service's replicas (see `farm.stacks.scaling`).
A key for a service the stack does not mark scalable, or that no configuration of the sweep runs, is refused in
one line; one that only some configurations run (catalog under ``architecture: [monolith, microservices]``) is
ignored for the others, and `replica_notes` says so.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from farm.errors import SpecError
from farm.stacks.scaling import PREFIX, is_replica_key, runs

__all__ = ["Price", "check_replicas", "is_replica_key", "replica_notes"]

if TYPE_CHECKING:
    from farm.spec import SweepSpec
    from farm.stacks.manifest import StackManifest

MAX_REPLICAS = 256


class Price(BaseModel):
    """What one unit of declared cost (the stack's ``cost_unit``) costs per hour: turns cost into money."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    per_unit_hour: float = Field(gt=0, le=1e9, description="price of one cost unit for one hour")
    currency: str = Field(default="USD", pattern=r"^[A-Za-z]{1,10}$", description="e.g. USD, EUR")


def check_replica_values(matrix: dict[str, list[Any]]) -> None:
    """Raise ValueError (one line) unless every ``replicas.<service>`` list holds whole numbers 1..MAX_REPLICAS."""
    for key, values in matrix.items():
        if not is_replica_key(key):
            continue
        if not key.removeprefix(PREFIX):
            raise ValueError(f"'{key}' names no service; write replicas.<service>, e.g. replicas.catalog")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPLICAS:
                raise ValueError(f"'{key}' values must be whole numbers from 1 to {MAX_REPLICAS}, not {value!r}"[:200])


def _configurations(spec: SweepSpec, manifest: StackManifest, service: str) -> list[dict[str, Any]]:
    """The values of the parameters the service's ``when`` reads, in every combination the sweep's matrix gives."""
    found = next((s for s in manifest.local.services if s.name == service), None) if manifest.local else None
    keys = [k for k in found.when if k in spec.matrix] if found is not None else []
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(spec.matrix[k] for k in keys))]


def check_replicas(spec: SweepSpec, manifest: StackManifest, source: str) -> None:
    """Refuse a ``replicas.<service>`` matrix key for a service the stack does not mark scalable, or that no
    configuration of the sweep runs, or values that are not replica counts (SpecError, one line)."""
    try:
        check_replica_values(spec.matrix)
    except ValueError as exc:
        raise SpecError(f"{source}: matrix: {exc}") from exc
    for key in spec.matrix:
        if not is_replica_key(key):
            continue
        service = key.removeprefix(PREFIX)
        if service not in manifest.scalable:
            marked = ", ".join(manifest.scalable) or "none (add `scalable:` to its stack.yaml)"
            raise SpecError(f"{source}: matrix.{key[:60]}: '{service[:40]}' is not a scalable service of stack "
                            f"'{manifest.name}'; scalable: {marked}")
        if not any(runs(manifest, config, service) for config in _configurations(spec, manifest, service)):
            raise SpecError(f"{source}: matrix.{key}: no configuration of this sweep runs '{service}' "
                            f"({_condition(manifest, service)}); change the matrix or remove {key}")


def replica_notes(spec: SweepSpec, manifest: StackManifest) -> list[str]:
    """One line per ``replicas.<service>`` key that some of the sweep's configurations ignore (they do not run it)."""
    notes = []
    for key in spec.matrix:
        service = key.removeprefix(PREFIX)
        if not is_replica_key(key) or service not in manifest.scalable:
            continue
        skipped = [c for c in _configurations(spec, manifest, service) if not runs(manifest, c, service)]
        for config in skipped:
            where = ", ".join(f"{k}={v}" for k, v in config.items())
            notes.append(f"matrix.{key}: ignored for {where} (it runs no {service}): those cells run once, "
                         "not once per value")
    return notes


def _condition(manifest: StackManifest, service: str) -> str:
    found = next((s for s in manifest.local.services if s.name == service), None) if manifest.local else None
    if found is None:
        return "never"
    return "it runs only with " + ", ".join(f"{k}={v}" for k, v in found.when.items()) if found.when else "never"
