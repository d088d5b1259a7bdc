"""The validated sweep: `SweepSpec` (a grid of load levels × instances × stack parameters × repetitions) and
`LoadedSweep` (the spec with its resolved stack and its text)."""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from farm.compare import DEFAULT_COMPARISON, Comparison
from farm.errors import SpecError
from farm.load_level import RATE, LoadKind, load_kind
from farm.search_spec import SearchSpec
from farm.spec.compare import CompareSpec
from farm.spec.fields import (
    BOUNDS,
    LOAD_AXES,
    MAX_EXCLUDES,
    MAX_RATE,
    SLO,
    CpuSpec,
    Description,
    Frozen,
    LoadSpec,
    MatrixValue,
    PlainText,
    StopWhen,
    SutSpec,
    open_loop,
)
from farm.stacks.manifest import Scalar, StackManifest
from farm.sweep_scaling import Price
from farm.text import clip as _clip

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_NAME_RULE = "use letters, digits, '.', '_' or '-' (at most 80), starting with a letter or digit"


def check_sweep_name(name: str, what: str = "name") -> str:
    """The name if it is a valid sweep name; else `SpecError` saying `what` is wrong and the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SpecError(f"{what}: {_clip(repr(name))} is not a valid sweep name; {_NAME_RULE}")
    return name


def locust_users(spec: SweepSpec) -> list[int]:
    """The Locust users of every load level of a sweep: its users, or those its offered rates need."""
    if spec.load_kind == RATE:
        return [open_loop(float(r), spec.load)[0] for r in spec.matrix["rate"] if isinstance(r, int | float)]
    return [u for u in spec.matrix.get("users", []) if isinstance(u, int) and not isinstance(u, bool)]


def load_axis(spec: SweepSpec) -> LoadKind:
    """The matrix key of a sweep's load levels: ``users`` (closed loop) or ``rate`` (requests/s offered)."""
    return spec.load_kind


_UNSET_UNHASHED = ("reprovision", "seed", "cpus", "price", "search", "compare")


class SweepSpec(Frozen):
    """A validated sweep: a grid of load levels (users, or a rate offered) × instances × stack parameters ×
    repetitions."""

    name: str
    stack: PlainText
    matrix: dict[PlainText, list[MatrixValue]]
    exclude: list[dict[PlainText, MatrixValue]] = Field(default_factory=list, max_length=MAX_EXCLUDES)
    load: LoadSpec = Field(default_factory=LoadSpec)
    repetitions: int = Field(default=1, ge=1, le=100)
    reprovision: bool | None = Field(default=None, description="a fresh stack per repetition (default: true); "
                                     "false provisions once for all repetitions of a configuration")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1,
                             description="shuffles the repetitions' run order; default: derived from the name")
    slo: SLO | None = None
    stop_when: StopWhen | None = None
    targets: list[PlainText] = Field(default_factory=list, description="worker names; groups are spread over them")
    sut: SutSpec | None = Field(default=None, description="run the stack on SUT hosts; default: here, as processes")
    cpus: CpuSpec | None = Field(default=None, description="generator and stack on one host: their CPU sets "
                                 "(default: split the host's CPUs)")
    price: Price | None = Field(default=None, description="per_unit_hour (and currency) of the stack's cost_unit")
    search: SearchSpec | None = Field(default=None, description="capacity search instead of a grid of replicas")
    compare: CompareSpec | None = Field(default=None, description="which stack parameters are the architecture and "
                                        "the cache (default: those named architecture and cache)")
    description: Description = ""

    @property
    def load_kind(self) -> LoadKind:
        """The load axis: ``users`` (closed loop) or ``rate`` (requests/s offered), decided by the matrix."""
        return load_kind(self.matrix)

    @property
    def comparison(self) -> Comparison:
        """The comparison keys: ``compare:``, else the defaults (`farm.compare`)."""
        return self.compare.keys if self.compare is not None else DEFAULT_COMPARISON

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(_NAME_RULE)
        return value

    @field_validator("matrix")
    @classmethod
    def _matrix(cls, matrix: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        axes = [key for key in LOAD_AXES if key in matrix]
        if not axes:
            raise ValueError("needs a 'users' list (closed loop, e.g. users: [10, 50]) or a 'rate' list "
                             "(open loop, requests/s offered, e.g. rate: [50, 100])")
        if len(axes) > 1:
            raise ValueError("has both 'users' and 'rate'; give one: users (closed loop) or rate (open loop, "
                             "requests/s offered)")
        for value in matrix.get("rate", []):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_RATE:
                raise ValueError(f"'rate' values must be requests per second above 0 and at most {MAX_RATE:,.0f}, "
                                 f"not {_clip(repr(value))}")
        for key, values in matrix.items():
            if not values:
                raise ValueError(f"'{key}' is an empty list; give at least one value")
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"'{key}' lists a value twice")
        for key in BOUNDS:
            for value in matrix.get(key, []):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= BOUNDS[key]:
                    raise ValueError(f"'{key}' values must be whole numbers from 1 to {BOUNDS[key]:,}, "
                                     f"not {_clip(repr(value))}")
        return {**matrix, "instances": matrix.get("instances", [1])}

    def fingerprint(self) -> str:
        """A hash of the spec's meaning (not its formatting): equal specs have equal fingerprints."""
        data = self.model_dump(mode="json")
        for key in _UNSET_UNHASHED:  # absent newer fields leave the fingerprint of a sweep stored before them
            if data[key] is None:
                del data[key]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class LoadedSweep(BaseModel):
    """A sweep spec together with its resolved stack and where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    spec: SweepSpec
    manifest: StackManifest
    source: str
    text: str
