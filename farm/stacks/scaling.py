"""Per-service replicas and their declared cost: which services of a stack scale on their own, how many
replicas each runs in a configuration, and what that configuration costs.

A manifest marks services ``scalable: {catalog: {cost: 1}, app: {cost: monolith_processes}}`` with a
``cost_unit`` (e.g. cores). A sweep varies them with dotted matrix keys, ``replicas.catalog: [1, 2, 3]``; a
scalable service not named runs ``instances`` replicas (default 1), so ``instances: N`` stays "every scalable
service × N". A configuration's declared cost is Σ replicas × cost per replica over the scalable services it
runs (those whose local recipe's ``when`` holds). Both recipes read replica counts from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from farm.stacks.manifest import Scalar, StackManifest

PREFIX = "replicas."


def replica_key(service: str) -> str:
    """The matrix key (and cell parameter) that sets a service's replicas: ``replicas.<service>``."""
    return PREFIX + service


def is_replica_key(key: str) -> bool:
    """Whether a matrix key or cell parameter is a per-service replica count."""
    return key.startswith(PREFIX)


def scalable_refusal(manifest: StackManifest) -> str | None:
    """Why a manifest's ``scalable`` section is wrong (one line), or None."""
    services = manifest.services()
    for name in manifest.parameters:
        if is_replica_key(name):
            return f"parameter '{name}': names starting with '{PREFIX}' are the sweep's per-service replicas"
    for name, scalable in manifest.scalable.items():
        if name not in services:
            recipe = "local recipe" if manifest.local is not None else "compose recipe (entry, instances, scale)"
            return f"scalable.{name}: not a service of the {recipe}; services: {', '.join(services)}"
        local = next((s for s in manifest.local.services if s.name == name), None) if manifest.local else None
        if local is not None and "replicas" in local.model_fields_set:
            return (f"local.services[{name}].replicas: '{name}' is scalable, so its replicas come from the sweep "
                    f"({replica_key(name)}, else instances); remove its replicas:")
        if manifest.compose is not None and name not in manifest.compose.scale:
            return (f"scalable.{name}: the compose recipe does not scale it; add it to compose.scale (or the "
                    f"sweep's {replica_key(name)} would be ignored on SUT hosts)")
        if isinstance(scalable.cost, str):
            param = manifest.parameters.get(scalable.cost)
            numeric = param is not None and (param.kind in ("int", "float") or (
                param.values is not None and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                 for v in param.values)))
            if not numeric:
                return (f"scalable.{name}.cost: {scalable.cost!r} is not a number nor a numeric parameter of the "
                        "stack; give a number (cost of one replica) or a numeric parameter's name")
    return None


def replicas_for(params: dict[str, Scalar] | dict[str, Any], service: str) -> int:
    """A scalable service's replicas in a configuration: its ``replicas.<service>``, else ``instances``, else 1."""
    return int(params.get(replica_key(service), params.get("instances", 1)))


def runs(manifest: StackManifest, params: dict[str, Any], service: str) -> bool:
    """Whether a configuration runs the service (its local recipe's ``when`` holds for these parameters; a
    compose-only stack runs every service it names)."""
    if manifest.local is None:
        return service in manifest.services()
    found = next((s for s in manifest.local.services if s.name == service), None)
    return found is not None and found.enabled({**manifest.defaults(), **params})


def replicas_of(manifest: StackManifest, params: dict[str, Any]) -> dict[str, int]:
    """Replicas of every scalable service the configuration runs, in manifest order."""
    return {name: replicas_for(params, name) for name in manifest.scalable if runs(manifest, params, name)}


def cost_per_replica(manifest: StackManifest, params: dict[str, Any], service: str) -> float:
    """What one replica of a scalable service costs in this configuration (a number, or a parameter's value)."""
    cost = manifest.scalable[service].cost
    if isinstance(cost, str):
        return float({**manifest.defaults(), **params}[cost])
    return float(cost)


def declared_cost(manifest: StackManifest, params: dict[str, Any]) -> tuple[float | None, dict[str, dict[str, Any]]]:
    """A configuration's declared cost, Σ replicas × cost per replica, and per service its replicas, cost per
    replica and cost; (None, {}) for a stack that marks nothing scalable."""
    if not manifest.scalable:
        return None, {}
    breakdown: dict[str, dict[str, Any]] = {}
    for name, replicas in replicas_of(manifest, params).items():
        unit = cost_per_replica(manifest, params, name)
        breakdown[name] = {"replicas": replicas, "cost_per_replica": unit, "cost": round(replicas * unit, 6)}
    return round(sum(b["cost"] for b in breakdown.values()), 6), breakdown


def applicable(manifest: StackManifest, config: dict[str, Scalar]) -> dict[str, Scalar]:
    """The configuration without the ``replicas.<service>`` keys of services it does not run (a monolith cell of
    a sweep that scales catalog), so that such cells are one configuration, not one per ignored value."""
    return {k: v for k, v in config.items()
            if not is_replica_key(k) or runs(manifest, config, k.removeprefix(PREFIX))}


def compose_replicas(manifest: StackManifest, params: dict[str, Any], scaled: tuple[str, ...]) -> dict[str, int]:
    """Replicas per service of the compose recipe: a scalable service its own, another service in ``scale``
    ``instances``, any other one."""
    instances = int(params.get("instances", 1))
    return {s: replicas_for(params, s) if s in manifest.scalable else instances for s in scaled}
