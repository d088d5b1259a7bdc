"""The sections of a sweep file and their field types: load, SLO, stop, SUT hosts, CPU sets; the bounds they hold."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from farm.cpulist import parse_cpus
from farm.durations import format_duration, parse_duration
from farm.stacks.manifest import Scalar
from farm.text import clip

RESERVED = ("users", "rate", "instances")
LOAD_AXES = ("users", "rate")  # a sweep's load levels: closed-loop users, or open-loop requests/s offered
MAX_USERS = 100_000
MAX_RATE = 100_000.0
DEFAULT_PACING_S = 1.0
MAX_INSTANCES = 256
MAX_SECONDS = 24 * 3600.0
MAX_SPAWN_RATE = 10_000.0
MAX_EXCLUDES = 1_000
MAX_FILE_BYTES = 1 << 20
BOUNDS = {"users": MAX_USERS, "instances": MAX_INSTANCES}  # whole-number matrix keys and their largest value
DEFAULT_MAX_CELLS = 100_000


def _within_a_day(value: str | float | int) -> float:
    seconds = parse_duration(value)
    if seconds > MAX_SECONDS:
        raise ValueError(f"must be at most {format_duration(MAX_SECONDS)} ({MAX_SECONDS:.0f}s)")
    return seconds


def _scalar(value: object) -> object:
    # Before the Scalar union, so that a list or a mapping gets one plain message instead of four union branches.
    if isinstance(value, list | dict | tuple | set):
        raise ValueError("must be a single value (text, a number, true or false), not a list or a mapping")
    if not isinstance(value, str | int | float | bool):
        raise ValueError(f"must be text, a number, true or false, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


# Characters that change how a terminal or an editor shows the text around them: controls (newline, ESC, NUL …),
# line and paragraph separators, and the bidirectional overrides and isolates. Other format characters (the
# zero-width joiner of an emoji sequence) are harmless.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI


def _plain_text(value: object, *, limit: int = 1024, lines: bool = False) -> object:
    if isinstance(value, str):
        allowed = "\n\t" if lines else ""
        if any(_unsafe(c) and c not in allowed for c in value):
            raise ValueError("must not contain control characters")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
    return value


Seconds = Annotated[float, BeforeValidator(_within_a_day)]
MatrixValue = Annotated[Scalar, BeforeValidator(_scalar)]
PlainText = Annotated[str, BeforeValidator(_plain_text)]
Description = Annotated[str, BeforeValidator(lambda v: _plain_text(v, limit=10_000, lines=True))]


class Frozen(BaseModel):
    """A section of a sweep file: frozen, unknown keys refused, no infinities."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LoadSpec(Frozen):
    """How each cell's load is generated."""

    spawn_rate: float = Field(default=10.0, gt=0, le=MAX_SPAWN_RATE, description="users started per second")
    duration: Seconds = Field(default=60.0, description="measured run time per cell")
    warmup: Seconds = Field(default=10.0, description="load before measuring; excluded from statistics")
    locustfile: PlainText | None = Field(default=None, description="defaults to the stack's own scenario")
    processes: int = Field(default=1, ge=1, le=64, description="Locust processes: 1, or a master + N workers")
    warmup_until_stable: bool = Field(default=False, description="end the warm-up once throughput and hit ratio "
                                      "settle (written `warmup: {until_stable: true, max: 60s}`; warmup is the max)")
    pacing: Seconds | None = Field(default=None, description="open-loop load (matrix.rate): the longest response "
                                   f"time the offered rate survives; default {DEFAULT_PACING_S:g}s (see open_loop)")

    @model_validator(mode="before")
    @classmethod
    def _warmup_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("warmup"), dict):
            return data
        form = dict(data["warmup"])
        unknown = sorted(set(form) - {"until_stable", "max"})
        if unknown:
            raise ValueError(f"warmup: unknown key {clip(repr(unknown[0]), 40)}; allowed keys here: until_stable, max")
        if not isinstance(form.get("until_stable", False), bool):
            raise ValueError("warmup.until_stable: must be true or false")
        return {**data, "warmup": form.get("max", "60s"), "warmup_until_stable": form.get("until_stable", False)}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Left out when off, so that sweeps stored before the option keep their fingerprint.
        data = handler(self)
        if isinstance(data, dict) and not self.warmup_until_stable:
            data.pop("warmup_until_stable", None)
        if isinstance(data, dict) and self.pacing is None:
            data.pop("pacing", None)
        return data

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("pacing")
    @classmethod
    def _pacing(cls, value: float | None) -> float | None:
        if value is not None and not 0.01 <= value <= 60:
            raise ValueError("must be from 10ms to 60s")
        return value


def open_loop(rate: float, load: LoadSpec) -> tuple[int, float]:
    """The Locust users and the pacing interval (s) that offer ``rate`` tasks per second: open-loop load.

    Each user starts a task every ``pacing`` seconds on a fixed grid with a random phase (the Locust plugin's
    ``_paced``, a ``constant_pacing`` that makes up a late start), however long the last one took, so
    ``users / pacing`` = ``rate`` holds as long as responses stay below ``pacing``: the arrivals do not follow
    the system's speed, as they do with think-time users (closed loop). Responses slower than ``pacing`` delay
    their users' next tasks — the system can no longer take the offered rate; the cell's achieved rate falls
    short and it is flagged (saturated). users = ceil(rate × load.pacing), at most MAX_USERS (the cap
    shortens the pacing instead), and the pacing is then users / rate exactly. A scenario task is one request in
    the bundled locustfiles, so tasks/s are requests/s.
    """
    budget = load.pacing if load.pacing is not None else DEFAULT_PACING_S
    users = max(1, min(MAX_USERS, math.ceil(rate * budget - 1e-9)))
    return users, users / rate


def ramp_refusal(load: LoadSpec, users: list[Scalar]) -> str | None:
    """Why a load's warm-up cannot hold the ramp to its largest users level, or None when it can."""
    most = max((u for u in users if isinstance(u, int) and not isinstance(u, bool)), default=0)
    ramp = most / load.spawn_rate
    if ramp <= load.warmup:
        return None
    return (f"warm-up {_seconds(load.warmup)} is shorter than the ramp of {most} users at {load.spawn_rate:g}/s "
            f"({_seconds(ramp)}); raise load.warmup or load.spawn_rate")


def _seconds(value: float) -> str:
    return f"{value:.3g}s" if value < 60 else format_duration(value)


class SLO(Frozen):
    """The service level a configuration must meet to count in a recommendation."""

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    max_error_ratio: float = Field(default=0.01, ge=0, le=1)


class StopWhen(Frozen):
    """Saturation early stop: once a cell crosses either limit, the group's higher loads are skipped."""

    error_ratio: float | None = Field(default=None, gt=0, le=1)
    p95_ms: float | None = Field(default=None, gt=0)

    def crossed(self, error_ratio: float, p95_ms: float | None) -> bool:
        """Whether a cell with these results is saturated."""
        if self.error_ratio is not None and error_ratio >= self.error_ratio:
            return True
        return self.p95_ms is not None and p95_ms is not None and p95_ms >= self.p95_ms


class SutSpec(Frozen):
    """Where the stack under test runs: hosts named in the hosts file (FARM_HOSTS_FILE), and the driver there."""

    hosts: list[PlainText] = Field(min_length=1, max_length=1000, description="SUT host names; one free one per group")
    driver: Literal["compose"] = Field(default="compose", description="how the stack runs there")

    @field_validator("hosts")
    @classmethod
    def _distinct(cls, hosts: list[str]) -> list[str]:
        if len(set(hosts)) != len(hosts):
            raise ValueError("a host is listed twice")
        return hosts


class CpuSpec(Frozen):
    """Where generator and stack run when they share this host (see `farm.cpusets`): CPU lists, or no pinning."""

    generator: str | None = Field(default=None, description="the generator's CPUs, e.g. \"3\" or \"2-3\"; "
                                  "default: ceil(n/4) of the host's, at least one per Locust process")
    stack: str | None = Field(default=None, description="the stack's CPUs, e.g. \"0-2\"; default: the others")
    pin: bool = Field(default=True, description="false: no pinning (generator and stack share every CPU)")

    @field_validator("generator", "stack", mode="before")
    @classmethod
    def _cpu_list(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("must be a CPU list such as \"0\", \"0-2\" or \"0,2-3\"")
        parse_cpus(value)  # raises ValueError with the rule
        return str(value)

    @model_validator(mode="after")
    def _disjoint(self) -> CpuSpec:
        if self.generator is not None and self.stack is not None and \
                parse_cpus(self.generator) & parse_cpus(self.stack):
            raise ValueError("generator and stack must not share a CPU")
        return self
