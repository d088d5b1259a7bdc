"""A stack manifest (``stacks/<name>/stack.yaml``) read into a validated, frozen model.

A manifest declares the stack's parameters (allowed values and defaults), where its health, metrics and
cache-reset endpoints are, and a recipe to run it as local processes: services with templated commands and
config files, a replica count, and a condition on parameters, plus one-time setup steps (initialise a database,
install and seed a site) that run between the services marked ``start: before-setup`` and the others. Adding a
stack needs no Python.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from farm.bounded_yaml import load_mapping
from farm.errors import NotFoundError, SpecError
from farm.files import read_small_text
from farm.stacks.cache_spec import CacheStats, ResetAction

Scalar = str | int | float | bool
MANIFEST_FILE = "stack.yaml"
MAX_MANIFEST_BYTES = 1 << 20
_FARM = Path(__file__).resolve().parents[1]


def _builtin(kind: str) -> Path:
    # An installed farm ships its stacks and locustfiles as package data in farm/_builtin/ (see setup.py);
    # a clone (editable install) uses the repository's top-level folders.
    packaged = _FARM / "_builtin" / kind
    return packaged if packaged.is_dir() else _FARM.parent / kind


BUILTIN_STACKS = _builtin("stacks")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Refused in open text values: controls, format characters (bidi overrides, zero-width), line separators, and
# private-use, surrogate and unassigned code points.
_CONTROL = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# An open text parameter without a pattern of its own: letters, digits and `_ . , : / + = @ -`, not starting with
# '-' (it would read as an option), at most 256 characters, or empty. A stack that needs more says so (`pattern:`).
SAFE_TEXT = r"(?:[A-Za-z0-9_./][A-Za-z0-9_.,:/+=@-]{0,255})?"


class Parameter(_Frozen):
    """One stack parameter: either a closed set of values or a typed open value.

    An open text value is rendered into commands and config files, so it never holds control characters (a
    newline would add lines to an nginx config), and matches ``pattern`` (a regular expression the whole value
    must match), by default `SAFE_TEXT`: no spaces, quotes or shell, YAML and config metacharacters, no leading
    '-' (an option). An open number may be bounded by ``min`` and ``max``.
    """

    values: tuple[Scalar, ...] | None = None
    type: Literal["str", "int", "float", "bool"] | None = None
    pattern: str | None = Field(default=None, description="a regex every open text value must fully match")
    min: float | None = Field(default=None, allow_inf_nan=False, description="an open number's smallest value")
    max: float | None = Field(default=None, allow_inf_nan=False, description="an open number's largest value")
    default: Scalar
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.pattern is not None:
            if self.values is not None or self.kind != "str":
                raise ValueError("'pattern' applies only to an open text parameter (type: str, no values)")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {exc}") from exc
        if (self.min is not None or self.max is not None) and (self.values is not None or
                                                               self.kind not in ("int", "float")):
            raise ValueError("'min' and 'max' apply only to an open number (type: int or float, no values)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is larger than max {self.max:g}")
        refusal = self.refusal(self.default)
        if refusal is not None:
            raise ValueError(f"default {self.default!r} is not allowed: {refusal}")
        return self

    @property
    def kind(self) -> str:
        """The value type: declared, or that of the default."""
        return self.type or type(self.default).__name__

    def admits(self, value: object) -> bool:
        """Whether a sweep may set this parameter to ``value``."""
        return self.refusal(value) is None

    def refusal(self, value: object) -> str | None:
        """Why a sweep may not set this parameter to ``value`` (what is allowed), or None if it may."""
        if self.values is not None:
            if value in self.values and type(value) in {type(v) for v in self.values}:
                return None
            return f"allowed: {self.allowed()}"
        if self.kind == "float":
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if not numeric or not math.isfinite(value):  # type: ignore[arg-type]
                return f"allowed: {self.allowed()}"
        elif type(value).__name__ != self.kind:
            return f"allowed: {self.allowed()}"
        if isinstance(value, int | float) and not isinstance(value, bool) and not self._in_range(value):
            return f"allowed: {self.allowed()}"
        if isinstance(value, str):
            if any(unicodedata.category(c) in _CONTROL for c in value):
                return "text values must not contain control characters (newline, tab, NUL, ESC, …)"
            if re.fullmatch(self.text_pattern, value) is None:
                return f"the value must match the pattern {self.text_pattern!r}"
        return None

    @property
    def text_pattern(self) -> str:
        """The pattern an open text value must match: the manifest's, else `SAFE_TEXT`."""
        return self.pattern if self.pattern is not None else SAFE_TEXT

    def _in_range(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def allowed(self) -> str:
        """The allowed values in words, for error messages."""
        if self.values is not None:
            return ", ".join(str(v) for v in self.values)
        if self.kind == "str":
            return f"text matching the pattern {self.text_pattern!r}"
        if self.min is not None or self.max is not None:
            low = "–∞" if self.min is None else f"{self.min:g}"
            high = "∞" if self.max is None else f"{self.max:g}"
            whole = "a whole number" if self.kind == "int" else "a finite number"
            return f"{whole} from {low} to {high}"
        return "any finite number" if self.kind == "float" else f"any {self.kind}"


def _enabled(when: dict[str, Scalar | list[Scalar]], params: dict[str, Scalar]) -> bool:
    for key, wanted in when.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if params.get(key) not in options:
            return False
    return True


class ReadyCommand(_Frozen):
    """Readiness by a command: the replica is ready once the command exits 0 (e.g. ``SELECT 1`` as the app's
    database user over TCP, where a TCP connect or ``mysqladmin ping`` would pass too early)."""

    command: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=5.0, gt=0, le=300, description="seconds one attempt may take")


class Service(_Frozen):
    """One process of the local recipe, started ``replicas`` times on free loopback ports."""

    name: str
    command: tuple[str, ...] = Field(min_length=1)
    when: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    replicas: int | str = 1
    files: dict[str, str] = Field(default_factory=dict, description="rendered name -> template in stack folder")
    env: dict[str, str] = Field(default_factory=dict)
    ready: Literal["http", "tcp"] | ReadyCommand = "http"
    instance: bool = Field(default=False, description="an app instance: connectivity-checked, metrics, reset")
    start: Literal["before-setup", "after-setup"] = Field(
        default="after-setup", description="before-setup: started and ready before the setup steps run")
    ports: tuple[str, ...] = Field(default=(), description="names of extra free ports per replica (`ports.<name>`)")

    def enabled(self, params: dict[str, Scalar]) -> bool:
        """Whether this service runs for the given stack parameters."""
        return _enabled(self.when, params)


class SetupStep(_Frozen):
    """A one-time command of the local recipe, run in order after the ``start: before-setup`` services are ready
    and before the others start; a non-zero exit or its timeout fails the provisioning."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    command: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(default=120.0, gt=0, le=3600, description="seconds the step may take")
    when: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict, description="rendered name -> template in stack folder")
    env: dict[str, str] = Field(default_factory=dict)

    def enabled(self, params: dict[str, Scalar]) -> bool:
        """Whether this step runs for the given stack parameters."""
        return _enabled(self.when, params)


class LocalRecipe(_Frozen):
    """How to run the stack as processes on one host."""

    requires: tuple[str, ...] = Field(default=(), description="programs that must be on PATH (checked at up)")
    services: tuple[Service, ...] = Field(min_length=1)
    entry: str = Field(description="the service whose first replica is the stack's entry point")
    setup: tuple[SetupStep, ...] = Field(default=(), description="one-time steps, in order, before the instances")

    @model_validator(mode="after")
    def _entry_exists(self) -> LocalRecipe:
        names = [s.name for s in self.services]
        if self.entry not in names:
            raise ValueError(f"entry '{self.entry}' is not one of the services: {', '.join(names)}")
        if len(set(names)) != len(names):
            raise ValueError("service names must be unique")
        steps = [s.name for s in self.setup]
        if len(set(steps)) != len(steps):
            raise ValueError("setup step names must be unique")
        early = [s.name for s in self.services if s.start == "before-setup"]
        if self.entry in early:
            raise ValueError(f"entry '{self.entry}' cannot start before setup: the load must meet a set-up stack")
        if early and not self.setup:
            raise ValueError(f"{', '.join(early)} start before setup, but the recipe has no setup steps")
        return self


class ComposeLimits(_Frozen):
    """What each compose service may use at most, unless the compose file says otherwise for it."""

    pids: int = Field(default=1024, ge=16, le=1_000_000, description="processes and threads (pids_limit)")
    memory: str = Field(default="2g", pattern=r"^[1-9][0-9]{0,6}[kmg]$", description="mem_limit, e.g. 512m, 2g")


class ComposeRecipe(_Frozen):
    """How to run the stack as a Docker Compose project on a SUT host, over SSH.

    ``file`` and ``files`` are Jinja templates (see the local recipe) that also see ``project`` (the compose
    project name), ``replicas`` (service -> its containers' names, for config that must list every replica) and
    ``images`` (name -> the tag built from its context). Every service that the farm reaches (the entry and the
    instances) publishes its container ``port`` on an ephemeral host port, so each replica is reached directly.
    A ``files`` entry whose template does not end in ``.j2`` is uploaded byte for byte (code the containers
    mount); it may sit in a sub-folder of the stack, never outside it.
    """

    file: str = Field(description="the compose file template, relative to the stack folder")
    files: dict[str, str] = Field(default_factory=dict, description="rendered name -> template in stack folder")
    images: dict[str, str] = Field(default_factory=dict, description="image name -> build context folder")
    scale: tuple[str, ...] = Field(default=(), description="services run with `instances` replicas")
    instances: tuple[str, ...] = Field(min_length=1, description="services whose replicas are app instances")
    entry: str = Field(description="the service whose first replica receives the load")
    port: int = Field(default=8080, ge=1, le=65535, description="the container port the farm reaches")
    limits: ComposeLimits = Field(default_factory=ComposeLimits,
                                  description="per service, unless its compose file sets its own")



class Scalable(_Frozen):
    """A service that scales on its own (`replicas.<name>` in a sweep's matrix, else `instances`), and what one
    replica of it costs in the manifest's ``cost_unit``: a number, or the name of a numeric stack parameter."""

    cost: float | str = Field(default=1.0, description="cost of one replica, or a numeric parameter's name")

    @field_validator("cost")
    @classmethod
    def _cost(cls, value: float | str) -> float | str:
        if isinstance(value, float | int) and not (math.isfinite(value) and value >= 0):
            raise ValueError("must be a finite number ≥ 0, or the name of a numeric parameter")
        return value


class StackManifest(_Frozen):
    """A validated stack manifest and the folder it came from."""

    name: str
    description: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    locustfile: str
    health: str = "/healthz"
    metrics: str | None = None
    reset: str | ResetAction | None = Field(default=None, description="a POST path on each instance, or an action")
    cache: CacheStats | None = Field(default=None, description="read the hit ratio from the cache itself")
    local: LocalRecipe | None = None
    compose: ComposeRecipe | None = None
    scalable: dict[str, Scalable] = Field(default_factory=dict, description="services that scale on their own")
    cost_unit: str = Field(default="replicas", pattern=r"^[A-Za-z][A-Za-z0-9 _/.-]{0,39}$",
                           description="the unit of `scalable` costs, e.g. cores")
    folder: Path = Field(default=Path("."), exclude=True)

    @field_validator("reset", mode="before")
    @classmethod
    def _reset(cls, value: object) -> object:
        # a mapping is an action: say what is wrong with it, not that it is not a string
        if isinstance(value, dict):
            try:
                return ResetAction.model_validate(value)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ValueError(f"{where}: {err['msg']}" if where else err["msg"]) from None
        return value

    @model_validator(mode="after")
    def _reserved_names(self) -> StackManifest:
        if self.local is None and self.compose is None:
            raise ValueError("a stack needs at least one recipe: `local:` (processes on this host) and/or "
                             "`compose:` (Docker Compose on a SUT host)")
        for reserved in ("users", "rate", "instances"):
            if reserved in self.parameters:
                raise ValueError(f"'{reserved}' is set by the sweep; it cannot be a stack parameter")
        from farm.stacks.scaling import scalable_refusal

        refusal = scalable_refusal(self)
        if refusal is not None:
            raise ValueError(refusal)
        return self

    def local_recipe(self) -> LocalRecipe:
        """The process recipe; SpecError (one line naming the stack) if it has none."""
        if self.local is None:
            raise SpecError(f"stack '{self.name}' has no local recipe to run as processes on this host",
                            hint="add a `local:` section to its stack.yaml, or run it on a SUT host (`sut:`, "
                                 "`--sut HOST`)")
        return self.local

    def compose_recipe(self) -> ComposeRecipe:
        """The Docker Compose recipe; SpecError (one line naming the stack) if it has none."""
        if self.compose is None:
            raise SpecError(f"stack '{self.name}' has no compose recipe to run on a SUT host",
                            hint="add a `compose:` section to its stack.yaml, or run it here without `sut:`")
        return self.compose

    def services(self) -> tuple[str, ...]:
        """The names of the services a recipe runs: the local recipe's, else the compose recipe's reached and
        scaled ones."""
        if self.local is not None:
            return tuple(s.name for s in self.local.services)
        recipe = self.compose_recipe()
        return tuple(dict.fromkeys((recipe.entry, *recipe.instances, *recipe.scale)))

    def defaults(self) -> dict[str, Scalar]:
        """Every parameter at its default value."""
        return {name: p.default for name, p in self.parameters.items()}

    def locustfile_path(self) -> Path:
        """The stack's own Locust scenario, resolved against the stack folder."""
        return (self.folder / self.locustfile).resolve()


def resolve_stack_folder(name_or_path: str, *, base: Path | None = None, extra: Path | None = None) -> Path:
    """Find a stack folder by path (relative to ``base``) or by name under the known stack folders."""
    candidates: list[Path] = []
    given = Path(name_or_path).expanduser()
    if given.is_absolute():
        candidates.append(given)
    else:
        if base is not None:
            candidates.append(base / given)
        candidates.append(Path.cwd() / given)
        for root in (extra, Path.cwd() / "stacks", BUILTIN_STACKS):
            if root is not None:
                candidates.append(root / given)
    for folder in candidates:
        if (folder / MANIFEST_FILE).is_file():
            return folder.resolve()
    known = sorted(p.parent.name for p in BUILTIN_STACKS.glob(f"*/{MANIFEST_FILE}"))
    raise NotFoundError(
        f"stack '{name_or_path}' not found",
        hint=f"name a folder holding {MANIFEST_FILE}; known stacks: {', '.join(known) or 'none'}",
    )


def load_manifest(folder: Path) -> StackManifest:
    """Read and validate ``folder/stack.yaml``."""
    path = folder / MANIFEST_FILE
    text = read_small_text(path, MAX_MANIFEST_BYTES, "stack manifest", "a stack manifest is a short file")
    return parse_manifest(text, folder, path)


def parse_manifest(text: str, folder: Path, path: Path) -> StackManifest:
    """Validate a manifest's text as the stack folder ``folder``'s (``path`` names it in errors)."""
    raw = load_mapping(text, path, "a stack manifest must be a mapping")
    try:
        manifest = StackManifest.model_validate({**raw, "folder": folder})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise SpecError(f"{path}: {where}: {err['msg']}") from exc
    from farm.stacks.closed import check_closed  # here: closed.py reads the model this module defines

    try:
        check_closed(manifest)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.message}", hint=exc.hint) from exc
    return manifest
