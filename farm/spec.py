"""A sweep file (YAML) read into a validated, frozen `SweepSpec`.

Every problem is reported as one `SpecError` line: the file, the field path, what is wrong, what is allowed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from farm.bounded_yaml import load_bounded
from farm.cpulist import parse_cpus
from farm.durations import format_duration, parse_duration
from farm.errors import FarmError, SpecError
from farm.files import read_regular
from farm.search_spec import SearchSpec, check_search
from farm.stacks.manifest import Scalar, StackManifest, load_manifest, resolve_stack_folder
from farm.sweep_scaling import Price, check_replicas, is_replica_key

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
_BOUNDS = {"users": MAX_USERS, "instances": MAX_INSTANCES}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_NAME_RULE = "use letters, digits, '.', '_' or '-' (at most 80), starting with a letter or digit"
DEFAULT_MAX_CELLS = 100_000


def check_sweep_name(name: str, what: str = "name") -> str:
    """The name if it is a valid sweep name; else `SpecError` saying `what` is wrong and the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SpecError(f"{what}: {_clip(repr(name))} is not a valid sweep name; {_NAME_RULE}")
    return name


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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class LoadSpec(_Frozen):
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
            raise ValueError(f"warmup: unknown key {_clip(repr(unknown[0]), 40)}; allowed keys here: until_stable, max")
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


def locust_users(spec: SweepSpec) -> list[int]:
    """The Locust users of every load level of a sweep: its users, or those its offered rates need."""
    if "rate" in spec.matrix:
        return [open_loop(float(r), spec.load)[0] for r in spec.matrix["rate"] if isinstance(r, int | float)]
    return [u for u in spec.matrix.get("users", []) if isinstance(u, int) and not isinstance(u, bool)]


def load_axis(spec: SweepSpec) -> str:
    """The matrix key of a sweep's load levels: ``users`` (closed loop) or ``rate`` (requests/s offered)."""
    return "rate" if "rate" in spec.matrix else "users"


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


class SLO(_Frozen):
    """The service level a configuration must meet to count in a recommendation."""

    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    max_error_ratio: float = Field(default=0.01, ge=0, le=1)


class StopWhen(_Frozen):
    """Saturation early stop: once a cell crosses either limit, the group's higher loads are skipped."""

    error_ratio: float | None = Field(default=None, gt=0, le=1)
    p95_ms: float | None = Field(default=None, gt=0)

    def crossed(self, error_ratio: float, p95_ms: float | None) -> bool:
        """Whether a cell with these results is saturated."""
        if self.error_ratio is not None and error_ratio >= self.error_ratio:
            return True
        return self.p95_ms is not None and p95_ms is not None and p95_ms >= self.p95_ms


class SutSpec(_Frozen):
    """Where the stack under test runs: hosts named in the hosts file (FARM_HOSTS_FILE), and the driver there."""

    hosts: list[PlainText] = Field(min_length=1, max_length=1000, description="SUT host names; one free one per group")
    driver: Literal["compose"] = Field(default="compose", description="how the stack runs there")

    @field_validator("hosts")
    @classmethod
    def _distinct(cls, hosts: list[str]) -> list[str]:
        if len(set(hosts)) != len(hosts):
            raise ValueError("a host is listed twice")
        return hosts


class CpuSpec(_Frozen):
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


_UNSET_UNHASHED = ("reprovision", "seed", "cpus", "price", "search")


class SweepSpec(_Frozen):
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
    description: Description = ""

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
        for key in _BOUNDS:
            for value in matrix.get(key, []):
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _BOUNDS[key]:
                    raise ValueError(f"'{key}' values must be whole numbers from 1 to {_BOUNDS[key]:,}, "
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


def load_sweep(path: Path, *, stacks_dir: Path | None = None,
               max_cells: int | None = DEFAULT_MAX_CELLS) -> LoadedSweep:
    """Read, validate and resolve a sweep file; raise `SpecError` naming the file and field on any problem."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise SpecError(_one_line(f"{path}: cannot read the sweep file: {exc.strerror or exc}")) from exc
    except ValueError as exc:  # a path with a NUL byte
        raise SpecError(_one_line(f"{path!r}: cannot read the sweep file: {exc}")) from exc
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(_one_line(f"{path}: the sweep file is larger than {MAX_FILE_BYTES // 1024} KiB; "
                                  "a sweep file is a short YAML document"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(_one_line(f"{path}: not a UTF-8 text file (byte 0x{data[exc.start]:02x} at offset "
                                  f"{exc.start}); a sweep file is YAML text")) from exc
    return parse_sweep(text, source=str(path), base=path.parent, stacks_dir=stacks_dir, max_cells=max_cells)


def parse_sweep(text: str, *, source: str, base: Path, stacks_dir: Path | None = None,
                max_cells: int | None = DEFAULT_MAX_CELLS) -> LoadedSweep:
    """Validate sweep YAML text; `source` names it in errors and `base` resolves relative stack paths.

    A sweep of more than `max_cells` cells, or whose ramp to its largest users level is longer than its warm-up,
    is refused (max_cells None: neither check, for sweeps already accepted).
    Every problem, whatever the text holds, is one `SpecError` line with control characters escaped.
    """
    try:
        return _parse(text, source=source, base=base, stacks_dir=stacks_dir, max_cells=max_cells)
    except SpecError as exc:
        raise SpecError(_one_line(exc.message), hint=exc.hint and _one_line(exc.hint)) from exc


def _parse(text: str, *, source: str, base: Path, stacks_dir: Path | None, max_cells: int | None) -> LoadedSweep:
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"{source}: the sweep is longer than {MAX_FILE_BYTES // 1024} KiB; "
                        "a sweep file is a short YAML document")
    try:
        raw = load_bounded(text)
    except SpecError as exc:
        raise SpecError(f"{source}: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep file must be a mapping with name, stack and matrix")
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {_describe(exc)}") from exc
    if max_cells is not None:  # a new sweep; one already accepted (a worker reading it) stays readable
        _check_cell_count(spec, source, max_cells)
        refusal = ramp_refusal(spec.load, list(locust_users(spec)))
        if refusal is not None:
            paced = " (open loop: users = rate × load.pacing)" if "rate" in spec.matrix else ""
            raise SpecError(f"{source}: load.warmup: {refusal}{paced}")
    if spec.cpus is not None and spec.sut is not None:
        raise SpecError(f"{source}: cpus: the stack runs on SUT hosts, not beside the generator; remove cpus: "
                        "(it pins generator and stack apart when they share this host)")
    if spec.load.pacing is not None and "rate" not in spec.matrix:
        raise SpecError(f"{source}: load.pacing: only open-loop load is paced; give matrix.rate instead of "
                        "matrix.users, or remove load.pacing")
    try:
        manifest = load_manifest(resolve_stack_folder(spec.stack, base=base, extra=stacks_dir))
    except FarmError as exc:
        raise SpecError(f"{source}: stack: {exc}") from exc
    except (OSError, ValueError) as exc:  # a name the file system refuses (too long, …)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"{source}: stack: cannot look up {_clip(repr(spec.stack))}: {reason}") from exc
    _check_against_stack(spec, manifest, source)
    if spec.load.locustfile is not None:
        _resolve_locustfile(spec.load.locustfile, base, source)
    return LoadedSweep(spec=spec, manifest=manifest, source=source, text=text)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    """`text` with every control, format or line/paragraph separator character escaped, so it prints as one line."""
    if all(c == " " or unicodedata.category(c)[0] not in "CZ" for c in text):
        return text
    return "".join(c if c == " " or unicodedata.category(c)[0] not in "CZ"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


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


def locustfile_for(loaded: LoadedSweep) -> Path:
    """The scenario a sweep's cells run: its own `load.locustfile`, else the stack's."""
    if loaded.spec.load.locustfile is None:
        return loaded.manifest.locustfile_path()
    return _resolve_locustfile(loaded.spec.load.locustfile, Path(loaded.source).parent, loaded.source)


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
    declared = manifest.parameters
    allowed_keys = ", ".join([*RESERVED, *declared, *(f"replicas.{s}" for s in manifest.scalable)])
    check_replicas(spec, manifest, source)
    check_search(spec, manifest, source)
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
