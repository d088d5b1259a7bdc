"""Expansion of a sweep into cells, and grouping of cells that share one provisioning of the stack."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from typing import Any

from farm.load_level import KINDS, AtLoadLevel
from farm.spec import SweepSpec, load_axis
from farm.stacks.manifest import Scalar, StackManifest
from farm.stacks.scaling import applicable, is_replica_key


@dataclass(frozen=True)
class Cell(AtLoadLevel):
    """One measurement: a stack configuration at one load level (users, or a rate offered), in one repetition."""

    id: str
    group_id: str
    params: dict[str, Scalar]
    repetition: int
    order: int

    def stack_params(self) -> dict[str, Scalar]:
        """The stack configuration: every parameter but the load level."""
        return {k: v for k, v in self.params.items() if k not in KINDS}


@dataclass(frozen=True)
class Group:
    """Cells that run on one provisioning of the stack, in ascending load within each repetition."""

    id: str
    config: dict[str, Scalar]
    cells: tuple[Cell, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Plan:
    """The cells of a sweep, grouped by provisioning, in run order; ``seed`` shuffled the repetitions."""

    groups: tuple[Group, ...]
    seed: int = 0

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


def group_id(sweep_name: str, config: dict[str, Scalar], repetition: int | None = None) -> str:
    """The deterministic id of a group: one stack configuration, in one repetition if each has its own stack."""
    return _digest(sweep_name, config) if repetition is None else _digest(sweep_name, config, repetition)


def plan_seed(spec: SweepSpec) -> int:
    """The seed that shuffles the repetitions: the spec's own, else one derived from the sweep's name."""
    if spec.seed is not None:
        return spec.seed
    return int(hashlib.sha256(f"loadfarm-seed:{spec.name}".encode()).hexdigest()[:15], 16)


def per_repetition(spec: SweepSpec) -> bool:
    """Whether each repetition gets its own provisioning (a group of its own): the default, with 2+ repetitions."""
    return spec.reprovision is not False and spec.repetitions > 1


def refinement(sweep_name: str, groups: dict[str, dict[str, Scalar]],
               brackets: list[tuple[dict[str, Any], int, int]], repetitions: int, points: int = 1,
               axis: str = "users") -> list[Cell]:
    """Cells between two grid loads that bracket a crossover, for every group matching the bracket's parameters.

    ``brackets`` holds (parameters to match, e.g. cache and instances; lower load; upper load), loads in the
    sweep's ``axis`` (users, or rate). A group of one repetition (``reprovision``) gets that repetition's cells;
    a group of all repetitions gets them all.
    """
    cells: list[Cell] = []
    for match, low, high in brackets:
        levels = sorted({round(low + (high - low) * (i + 1) / (points + 1)) for i in range(points)} - {low, high})
        for gid, config in groups.items():
            if any(config.get(k) != v for k, v in match.items()):
                continue
            own = [r for r in range(1, repetitions + 1) if gid == group_id(sweep_name, config, r)]
            for rep in own or range(1, repetitions + 1):  # a group per repetition, or one for them all
                for level in levels:
                    params = {**config, axis: level}
                    cells.append(Cell(cell_id(sweep_name, params, rep), gid, params, rep, 0))
    return cells


def _excluded(params: dict[str, Scalar], rules: list[dict[str, Scalar]]) -> bool:
    return any(all(params.get(k) == v for k, v in rule.items()) for rule in rules)


def _comparison(config: dict[str, Scalar], architecture: str) -> tuple[str, ...]:
    # Configurations compared point by point: the same except for the architecture and the per-service replicas
    # (the cost comparison sets each architecture's cheapest replicas against the other's).
    return tuple(repr(v) for k, v in sorted(config.items()) if k != architecture and not is_replica_key(k))


def _group_order(config: dict[str, Scalar], architecture: str) -> tuple[str, ...]:
    # Architectures of one configuration run next to each other, so a partial sweep is comparable.
    return (*_comparison(config, architecture), repr(config.get(architecture)))


def expand(spec: SweepSpec, manifest: StackManifest) -> Plan:
    """Cells = matrix product − excludes, × repetitions; grouped by everything but the load level (users, or
    rate; and, by default, by repetition: each repetition provisions its own stack).

    A ``replicas.<service>`` value is dropped from the configurations that do not run that service, so they run
    once, not once per value. Run order: configurations that differ only by architecture (and per-service
    replicas) stay together; with a group per repetition, the
    repetitions of each such pair run in a shuffled order (``plan_seed``) and the architecture that goes first
    alternates from one repetition to the next (A B, B A, A B …), so drift over time cancels out instead of
    passing for an architecture difference. Cell ids never depend on the grouping; group ids do only with a
    group per repetition, so a sweep stored before ``reprovision`` existed keeps its ids.
    """
    keys = list(spec.matrix)
    axis = load_axis(spec)
    defaults = manifest.defaults()
    configs: dict[str, dict[str, Scalar]] = {}
    loads_of: dict[str, list[Scalar]] = {}
    for values in itertools.product(*(spec.matrix[k] for k in keys)):
        params = {**defaults, **dict(zip(keys, values, strict=True))}
        if _excluded(params, spec.exclude):
            continue
        config = applicable(manifest, {k: v for k, v in params.items() if k != axis})
        key = _digest(config)
        configs[key] = config
        if params[axis] not in loads_of.setdefault(key, []):
            loads_of[key].append(params[axis])
    architecture = spec.comparison.architecture
    ordered = sorted(configs, key=lambda k: _group_order(configs[k], architecture))
    seed = plan_seed(spec)
    reps = list(range(1, spec.repetitions + 1))
    runs: list[tuple[str, list[int], int | None]] = []  # (config key, repetitions, repetition of its own group)
    if per_repetition(spec):
        rng = random.Random(seed)
        pairs: dict[tuple[str, ...], list[str]] = {}
        for key in ordered:
            pairs.setdefault(_comparison(configs[key], architecture), []).append(key)
        for pair in pairs.values():
            shuffled = rng.sample(reps, len(reps))
            for slot, rep in enumerate(shuffled):
                runs += [(key, [rep], rep) for key in (pair if slot % 2 == 0 else pair[::-1])]
    else:
        runs = [(key, reps, None) for key in ordered]
    groups = []
    order = 0
    for key, repetitions, own in runs:
        gid = group_id(spec.name, configs[key], own)
        cells = []
        for rep in repetitions:
            for level in sorted(loads_of[key], key=float):
                params = {**configs[key], axis: level}
                cells.append(Cell(cell_id(spec.name, params, rep), gid, params, rep, order))
                order += 1
        groups.append(Group(gid, configs[key], tuple(cells)))
    return Plan(tuple(groups), seed)
