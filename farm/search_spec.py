"""A sweep's capacity search (``search: {max_cost: 16}``): its model and the checks against the sweep and stack.

With ``search:`` the sweep does not measure a grid of replica counts: for each architecture, cache setting and
load it starts at one replica of every scalable service and scales the bottleneck one replica at a time until
the SLO is met or the next step would cost more than ``max_cost`` (see `farm.search`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from farm.errors import SpecError
from farm.stacks.scaling import declared_cost, is_replica_key, runs

if TYPE_CHECKING:
    from farm.spec import SweepSpec
    from farm.stacks.manifest import StackManifest

MAX_COST = 1e6


class SearchSpec(BaseModel):
    """Capacity search: the most a configuration may cost (in the stack's ``cost_unit``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_cost: float = Field(gt=0, le=MAX_COST, description="the search stops before a step that would cost more")


def check_search(spec: SweepSpec, manifest: StackManifest, source: str) -> None:
    """Refuse (SpecError, one line) a search the sweep or its stack cannot run: no SLO latency to meet, replica
    counts fixed in the matrix, a stack with nothing scalable, or a budget below the smallest configuration."""
    search = spec.search
    if search is None:
        return
    if spec.slo is None or spec.slo.p95_ms is None:
        raise SpecError(f"{source}: search: needs an SLO latency to meet; add slo: {{p95_ms: N}}")
    fixed = [k for k in spec.matrix if is_replica_key(k)] + (["instances"] if spec.matrix["instances"] != [1] else [])
    if fixed:
        raise SpecError(f"{source}: matrix.{fixed[0]}: the capacity search chooses the replicas; remove it "
                        "(every configuration starts at one replica of each scalable service)")
    if not manifest.scalable:
        raise SpecError(f"{source}: search: stack '{manifest.name}' marks no service scalable; add `scalable:` to "
                        "its stack.yaml (each service's cost per replica)")
    key = spec.comparison.architecture
    for architecture in spec.matrix.get(key, [manifest.defaults().get(key)]):
        start = {**manifest.defaults(), key: architecture, "instances": 1}
        if not any(runs(manifest, start, s) for s in manifest.scalable):
            continue
        cost, _ = declared_cost(manifest, start)
        if cost is not None and cost > search.max_cost:
            raise SpecError(f"{source}: search.max_cost: {search.max_cost:g} is below the cost of the smallest "
                            f"{architecture} configuration ({cost:g} {manifest.cost_unit}); raise it")
