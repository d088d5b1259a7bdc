"""Checks of a sweep beyond its fields: its cell count, its keys against the stack, its locustfile; and pydantic's
errors as one line naming the field."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from farm.errors import SpecError
from farm.search_spec import check_search
from farm.spec.fields import RESERVED
from farm.spec.model import SweepSpec
from farm.stacks.manifest import Scalar, StackManifest
from farm.sweep_scaling import check_replicas, is_replica_key
from farm.text import clip as _clip


def count_cells(spec: SweepSpec) -> int:
    """The number of cells of a sweep, computed arithmetically: matrix product − excluded combinations, × repetitions.

    Overlapping exclude rules are counted exactly by inclusion–exclusion when there are few of them; with many,
    excludes are ignored (an upper bound), which is only used to refuse a sweep that is too large.
    """
    sizes = {key: len(values) for key, values in spec.matrix.items()}
    total = math.prod(sizes.values())
    rules = [rule for rule in spec.exclude if all(rule.get(k) in spec.matrix.get(k, []) for k in rule)]
    if len(rules) <= _MAX_EXACT_EXCLUDES:
        total -= _excluded_count(rules, sizes)
    return total * spec.repetitions


_MAX_EXACT_EXCLUDES = 12


def _excluded_count(rules: list[dict[str, Scalar]], sizes: dict[str, int]) -> int:
    # Inclusion–exclusion over the rules: a set of rules matches together only where they agree on shared keys.
    excluded = 0
    for k in range(1, len(rules) + 1):
        for subset in itertools.combinations(rules, k):
            merged: dict[str, Scalar] = {}
            consistent = True
            for rule in subset:
                for key, value in rule.items():
                    if key in merged and merged[key] != value:
                        consistent = False
                    merged[key] = value
            if consistent:
                free = math.prod(n for key, n in sizes.items() if key not in merged)
                excluded += free if k % 2 else -free
    return excluded


def _check_cell_count(spec: SweepSpec, source: str, max_cells: int) -> None:
    cells = count_cells(spec)
    if cells > max_cells:
        raise SpecError(f"{source}: matrix: {cells} cells is more than the limit of {max_cells}; "
                        f"narrow the matrix or pass --max-cells {cells}")


def _resolve_locustfile(name: str, base: Path, source: str) -> Path:
    try:
        for candidate in (base / name, Path.cwd() / name):
            if candidate.is_file():
                return candidate.resolve()
    except (OSError, ValueError) as exc:  # a name the file system refuses (too long, …)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"{source}: load.locustfile: cannot look up {_clip(repr(name))}: {reason}") from exc
    raise SpecError(f"{source}: load.locustfile: {_clip(repr(name))} does not exist (relative to the sweep file)")


def _check_against_stack(spec: SweepSpec, manifest: StackManifest, source: str) -> None:
    if spec.sut is not None and manifest.compose is None:
        raise SpecError(f"{source}: sut: stack '{manifest.name}' has no compose recipe to run on a SUT host; "
                        "add a `compose:` section to its stack.yaml, or remove `sut:`")
    if spec.sut is None and manifest.local is None:
        raise SpecError(f"{source}: stack '{manifest.name}' has no local recipe to run as processes here; "
                        "add `sut: {hosts: [HOST]}` to run its compose recipe on a SUT host, or a `local:` "
                        "section to its stack.yaml")
    if spec.sut is None and not isinstance(manifest.reset, str | None):
        raise SpecError(f"{source}: stack '{manifest.name}' resets its cache inside its compose services "
                        "(reset: {exec/restart}), which only a SUT host runs; add `sut: {hosts: [HOST]}`, or give "
                        "the process recipe an HTTP `reset:` path")
    redis = manifest.cache.redis.service if manifest.cache is not None else None
    if spec.sut is None and redis is not None and manifest.local is not None \
            and redis not in {s.name for s in manifest.local.services}:
        raise SpecError(f"{source}: stack '{manifest.name}': cache: {{redis: {{service: {redis}}}}} names no service "
                        f"of its process recipe; name the local service running redis-server")
    declared = manifest.parameters
    allowed_keys = ", ".join([*RESERVED, *declared, *(f"replicas.{s}" for s in manifest.scalable)])
    check_replicas(spec, manifest, source)
    check_search(spec, manifest, source)
    _check_compare(spec, manifest, source)
    for key, values in spec.matrix.items():
        if key in RESERVED or is_replica_key(key):
            continue
        if key not in declared:
            raise SpecError(
                f"{source}: matrix.{_clip(key, 40)}: stack '{manifest.name}' has no parameter {_clip(repr(key), 40)}; "
                f"allowed keys: {allowed_keys}"
            )
        for i, value in enumerate(values):
            refusal = declared[key].refusal(value)
            if refusal is not None:
                raise SpecError(f"{source}: matrix.{key}[{i}]: {_clip(repr(value))} is not allowed for stack "
                                f"'{manifest.name}'; {refusal}")
    for i, rule in enumerate(spec.exclude):
        for key, value in rule.items():
            if key not in spec.matrix:
                raise SpecError(f"{source}: exclude[{i}].{_clip(key)}: not a matrix key; matrix keys: "
                                f"{', '.join(spec.matrix)}")
            if value not in spec.matrix[key]:
                raise SpecError(f"{source}: exclude[{i}].{key}: {_clip(repr(value))} is not in matrix.{key}")


def _check_compare(spec: SweepSpec, manifest: StackManifest, source: str) -> None:
    if spec.compare is None:
        return
    for role, key in spec.compare.model_dump().items():
        if key not in manifest.parameters:
            raise SpecError(f"{source}: compare.{role}: stack '{manifest.name}' has no parameter "
                            f"{_clip(repr(key), 40)}; its parameters: {', '.join(manifest.parameters) or '(none)'}")
    for key, role in spec.compare.keys.renamed().items():
        if role in manifest.parameters and role not in spec.compare.model_dump().values():
            raise SpecError(f"{source}: compare.{role}: is {key!r}, but stack '{manifest.name}' also has a parameter "
                            f"named {role!r}; name that one under compare: as well, or leave compare.{role} out")


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    where = ""
    for part in loc:
        part = _clip(str(part), 40) if not isinstance(part, int) else part
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else part)
    where = where or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        fields = ", ".join(_fields_at(loc[:-1]))
        return f"{where}: unknown key; allowed keys here: {fields}"
    if kind == "missing":
        return f"{where}: required but missing"
    message = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) or got is None or repr(got) in message else f" (got {_clip(repr(got))})"
    return f"{where}: {message}{shown}"


def _fields_at(loc: list[Any]) -> list[str]:
    model: type[BaseModel] = SweepSpec
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            break
        model = nested[0]
    return list(model.model_fields)
