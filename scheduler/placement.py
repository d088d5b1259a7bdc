"""Placement: which cell groups travel together, and to which queue.

Groups that the analysis compares point by point (same configuration except `architecture` and the per-service
``replicas.<service>``, which the cost comparison weighs against each other) form one unit and
run on the same host, so that hardware differences do not pass for architecture differences. With a group per
repetition (``reprovision``), every repetition's pair falls in the same unit, in the plan's interleaved order: the
groups run in the order they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farm.compare import DEFAULT_COMPARISON, Comparison
from farm.stacks.scaling import is_replica_key
from scheduler.contract import SHARED_QUEUE, host_queue


@dataclass(frozen=True)
class Unit:
    """Groups that run one after the other on one host, and the queue they go to."""

    group_ids: tuple[str, ...]
    queue: str
    label: dict[str, Any]


def units(groups: list[tuple[str, dict[str, Any]]], targets: list[str] | None = None,
          together: bool = True, compare: Comparison = DEFAULT_COMPARISON) -> list[Unit]:
    """Units from (group id, config) pairs in plan order; targets are worker names, used round-robin; ``compare``
    names the sweep's architecture and cache parameters (the label calls them so)."""
    keyed: dict[tuple[tuple[str, str], ...], list[str]] = {}
    labels: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for gid, params in groups:
        config = compare.roles(params)
        rest = {k: v for k, v in config.items() if k != "architecture" and not is_replica_key(k)} \
            if together else config
        key = tuple(sorted((k, repr(v)) for k, v in rest.items())) + (() if together else (("id", gid),))
        keyed.setdefault(key, []).append(gid)
        labels.setdefault(key, {k: rest[k] for k in ("cache", "instances") if k in rest}
                          | ({} if together else {"architecture": config.get("architecture")}))
    out = []
    for i, (key, gids) in enumerate(keyed.items()):
        queue = host_queue(targets[i % len(targets)]) if targets else SHARED_QUEUE
        out.append(Unit(tuple(gids), queue, labels[key]))
    return out
