"""Expansion of a sweep into cells, and grouping of cells that share one provisioning of the stack."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from farm.spec import SweepSpec
from farm.stacks.manifest import Scalar, StackManifest


@dataclass(frozen=True)
class Cell:
    """One measurement: a stack configuration at one user level, in one repetition."""

    id: str
    group_id: str
    params: dict[str, Scalar]
    repetition: int
    order: int

    @property
    def users(self) -> int:
        """Simulated users of this cell."""
        return int(self.params["users"])

    def stack_params(self) -> dict[str, Scalar]:
        """The stack configuration: every parameter but users."""
        return {k: v for k, v in self.params.items() if k != "users"}


@dataclass(frozen=True)
class Group:
    """Cells that run on one provisioning of the stack, in ascending users within each repetition."""

    id: str
    config: dict[str, Scalar]
    cells: tuple[Cell, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Plan:
    """The cells of a sweep, grouped by stack configuration, in run order."""

    groups: tuple[Group, ...]

    @property
    def cells(self) -> list[Cell]:
        """All cells in run order."""
        return [c for g in self.groups for c in g.cells]


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_id(sweep_name: str, params: dict[str, Scalar], repetition: int) -> str:
    """The deterministic id of a cell: the same parameters and repetition always give the same id."""
    return _digest(sweep_name, params, repetition)


def refinement(sweep_name: str, groups: dict[str, dict[str, Scalar]],
               brackets: list[tuple[dict[str, Any], int, int]], repetitions: int, points: int = 1) -> list[Cell]:
    """Cells between two grid loads that bracket a crossover, for every group matching the bracket's parameters.

    ``brackets`` holds (parameters to match, e.g. cache and instances; lower users; upper users).
    """
    cells: list[Cell] = []
    for match, low, high in brackets:
        levels = sorted({round(low + (high - low) * (i + 1) / (points + 1)) for i in range(points)} - {low, high})
        for gid, config in groups.items():
            if any(config.get(k) != v for k, v in match.items()):
                continue
            for rep in range(1, repetitions + 1):
                for users in levels:
                    params = {**config, "users": users}
                    cells.append(Cell(cell_id(sweep_name, params, rep), gid, params, rep, 0))
    return cells


def _excluded(params: dict[str, Scalar], rules: list[dict[str, Scalar]]) -> bool:
    return any(all(params.get(k) == v for k, v in rule.items()) for rule in rules)


def _group_order(config: dict[str, Scalar]) -> tuple[str, ...]:
    # Architectures of one configuration run next to each other, so a partial sweep is comparable.
    rest = tuple(repr(v) for k, v in sorted(config.items()) if k != "architecture")
    return (*rest, repr(config.get("architecture")))


def expand(spec: SweepSpec, manifest: StackManifest) -> Plan:
    """Cells = matrix product − excludes, × repetitions; grouped by everything but users."""
    keys = list(spec.matrix)
    defaults = manifest.defaults()
    configs: dict[str, dict[str, Scalar]] = {}
    users_of: dict[str, set[int]] = {}
    for values in itertools.product(*(spec.matrix[k] for k in keys)):
        params = {**defaults, **dict(zip(keys, values, strict=True))}
        if _excluded(params, spec.exclude):
            continue
        config = {k: v for k, v in params.items() if k != "users"}
        gid = _digest(spec.name, config)
        configs[gid] = config
        users_of.setdefault(gid, set()).add(int(params["users"]))
    groups = []
    order = 0
    for gid in sorted(configs, key=lambda g: _group_order(configs[g])):
        cells = []
        for rep in range(1, spec.repetitions + 1):
            for users in sorted(users_of[gid]):
                params = {**configs[gid], "users": users}
                cells.append(Cell(cell_id(spec.name, params, rep), gid, params, rep, order))
                order += 1
        groups.append(Group(gid, configs[gid], tuple(cells)))
    return Plan(tuple(groups))
