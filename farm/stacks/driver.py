"""The StackDriver port: bring a stack up, wait for it, reset and read it, and always take it down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from farm.errors import MetricsError, SpecError
from farm.stacks.manifest import Scalar, StackManifest

_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_deployment_name(name: str) -> str:
    """A deployment name is a folder name and a compose project name: no path separators, no dot-dot."""
    if not _DEPLOYMENT_NAME.match(name) or ".." in name:
        raise SpecError(f"deployment name {name!r} is not allowed",
                        hint="use letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Endpoint:
    """One running replica of a service, reachable at host:port."""

    service: str
    replica: int
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL of this replica."""
        return f"http://{self.host}:{self.port}"


@dataclass
class Deployment:
    """A provisioned stack: its deterministic name, parameters, entry URL and every replica."""

    name: str
    manifest: StackManifest
    params: dict[str, Scalar]
    entry: Endpoint
    endpoints: list[Endpoint]
    workdir: Path
    handles: dict[str, Any] = field(default_factory=dict, repr=False)
    instance_services: frozenset[str] = frozenset()

    @property
    def entry_url(self) -> str:
        """Where the load goes."""
        return self.entry.url

    @property
    def instances(self) -> list[Endpoint]:
        """Replicas of app services: connectivity-checked, reset, and read for metrics."""
        return [e for e in self.endpoints if e.service in self.instance_services]


@dataclass(frozen=True)
class StackMetrics:
    """Counters read from the stack's instances (cache hits and misses summed, raw documents kept)."""

    cache_hits: int | None
    cache_misses: int | None
    raw: list[dict[str, Any]]
    resources: dict[str, Any] | None = None  # a driver's sample of the SUT's CPU and memory (raw, or a window)

    def minus(self, before: StackMetrics) -> StackMetrics:
        """The change since an earlier reading (e.g. the end of the warm-up)."""
        from farm.stacks.resources import window

        def sub(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else max(0, a - b)

        used = window(before.resources, self.resources) if before.resources and self.resources else None
        return StackMetrics(sub(self.cache_hits, before.cache_hits), sub(self.cache_misses, before.cache_misses),
                            self.raw, used)


def read_metrics(docs: list[tuple[str, Any]], labels: list[dict[str, Any]]) -> StackMetrics:
    """Sum the stack contract's metrics over instances' documents, each ``(where, parsed JSON)``.

    The contract: a JSON object; optional ``cache`` object with ``hits`` and ``misses`` (whole numbers ≥ 0) and
    ``mode`` (``"none"`` means no cache); optional ``requests`` (a whole number). Anything else in it is kept
    as raw data. A document that breaks the contract raises MetricsError naming the instance and the field.
    """
    raw: list[dict[str, Any]] = []
    hits = misses = 0
    counted = False
    for (where, doc), label in zip(docs, labels, strict=True):
        if not isinstance(doc, dict):
            raise MetricsError(f"metrics of {where}: expected a JSON object, got {_kind(doc)}")
        _count(doc, "requests", where)
        cache = doc.get("cache")
        if cache is not None and not isinstance(cache, dict):
            raise MetricsError(f"metrics of {where}: 'cache' must be an object, got {_kind(cache)}")
        if cache and cache.get("mode") != "none":
            h, m = _count(cache, "hits", where), _count(cache, "misses", where)
            if h is not None or m is not None:
                counted = True
                hits, misses = hits + (h or 0), misses + (m or 0)
        raw.append({**label, **doc})
    return StackMetrics(hits, misses, raw) if counted else StackMetrics(None, None, raw)


def _count(doc: dict[str, Any], key: str, where: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
        raise MetricsError(f"metrics of {where}: '{key}' must be a whole number ≥ 0, got {value!r}"[:300])
    return int(value)


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), "null" if value is None else type(value).__name__)


class StackDriver(Protocol):
    """Provisions a stack somewhere; every method is safe to call on a half-started deployment."""

    def up(self, manifest: StackManifest, params: dict[str, Scalar], name: str) -> Deployment:
        """Start the stack; its name is deterministic so that a retry finds what a crash left."""
        ...

    def ready(self, deployment: Deployment, deadline: float) -> None:
        """Return when every replica answers its health check; raise ReadinessError at the deadline."""
        ...

    def check_instances(self, deployment: Deployment) -> int:
        """The classic connectivity check: every instance answers; returns how many did."""
        ...

    def reset(self, deployment: Deployment) -> None:
        """Empty caches and counters so the next cell starts from a known state."""
        ...

    def metrics(self, deployment: Deployment) -> StackMetrics:
        """Read cache hits/misses and raw metrics of every instance."""
        ...

    def logs(self, deployment: Deployment, lines: int = 20) -> str:
        """The last lines of every process's output, for error reports."""
        ...

    def down(self, deployment: Deployment) -> None:
        """Stop everything the deployment started; idempotent."""
        ...

    def clean(self, name: str) -> int:
        """Tear down whatever a dead predecessor left under ``name``; returns how many processes it stopped."""
        ...
