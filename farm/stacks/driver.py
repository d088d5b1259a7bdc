"""The StackDriver port: bring a stack up, wait for it, reset and read it, and always take it down."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from farm.errors import SpecError
from farm.stacks.manifest import Scalar, StackManifest

_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# A deployment's random token: the farm sends it with every reset and metrics request, and the built-in stacks
# refuse both without it (a reset from anyone else would empty a cache under a measurement). Services get it in
# their environment (TOKEN_ENV) and compose templates as ``token``.
TOKEN_HEADER = "X-Farm-Token"
TOKEN_ENV = "LOADFARM_TOKEN"


def new_token() -> str:
    """A fresh random token for one deployment."""
    import secrets

    return secrets.token_urlsafe(24)


def check_deployment_name(name: str) -> str:
    """A deployment name is a folder name and a compose project name: no path separators, no dot-dot."""
    if not _DEPLOYMENT_NAME.match(name) or ".." in name:
        raise SpecError(f"deployment name {name!r} is not allowed",
                        hint="use letters, digits, '.', '_' or '-' (at most 128), starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Endpoint:
    """One running replica of a service, reachable at host:port: from the generator, or, when ``via`` names a
    container, only from inside its compose project's network (``host`` is then the replica's container name)."""

    service: str
    replica: int
    host: str
    port: int
    via: str = ""

    @property
    def url(self) -> str:
        """Base URL of this replica (an IPv6 address in brackets, as URLs need)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@dataclass
class Deployment:
    """A provisioned stack: its deterministic name, parameters, entry URL and every replica."""

    name: str
    manifest: StackManifest
    params: dict[str, Scalar]
    entry: Endpoint
    endpoints: list[Endpoint]
    workdir: Path
    handles: dict[str, Any] = field(default_factory=dict, repr=False)  # the driver's own; no caller reads them
    instance_services: frozenset[str] = frozenset()
    token: str = field(default="", repr=False)  # the deployment's reset token (TOKEN_HEADER), never logged

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
    """Counters read from the stack's instances (cache hits and misses summed, raw documents kept).

    ``warnings``: what in the documents broke the contract (the figures it affects are None); ``requests_known``:
    whether every instance's request count could be read (else the server-side count is not compared).
    """

    cache_hits: int | None
    cache_misses: int | None
    raw: list[dict[str, Any]]
    resources: dict[str, Any] | None = None  # a driver's sample of the SUT's CPU and memory (raw, or a window)
    warnings: tuple[str, ...] = ()
    requests_known: bool = True

    def minus(self, before: StackMetrics) -> StackMetrics:
        """The change since an earlier reading (e.g. the end of the warm-up)."""
        from farm.stacks.resources import window

        def sub(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else max(0, a - b)

        used = window(before.resources, self.resources) if before.resources and self.resources else None
        return StackMetrics(sub(self.cache_hits, before.cache_hits), sub(self.cache_misses, before.cache_misses),
                            self.raw, used, tuple(dict.fromkeys((*before.warnings, *self.warnings))),
                            before.requests_known and self.requests_known)


class Unreadable(str):
    """Why an instance's metrics document could not be read (no answer, not JSON, too large, a timeout)."""


def read_metrics(docs: list[tuple[str, Any]], labels: list[dict[str, Any]]) -> StackMetrics:
    """Sum the stack contract's metrics over instances' documents, each ``(where, parsed JSON or Unreadable)``.

    The contract: a JSON object; optional ``cache`` object with ``hits`` and ``misses`` (whole numbers ≥ 0) and
    ``mode`` (``"none"`` means no cache); optional ``requests`` (a whole number). Anything else in it is kept
    as raw data. A document that breaks it never fails the cell: the figures it affects (the hit ratio, the
    server's request count) are left empty and a warning names the instance, the URL and the field.
    """
    raw: list[dict[str, Any]] = []
    warned: list[str] = []
    hits = misses = 0
    counted, cache_known, requests_known = False, True, True

    def warn(where: str, problem: str, affects: str) -> None:
        warned.append(f"metrics of {where}: {problem}"[:300] + f"; {affects} left empty")

    for (where, doc), label in zip(docs, labels, strict=True):
        if isinstance(doc, Unreadable) or not isinstance(doc, dict):
            problem = f"unreadable: {doc}" if isinstance(doc, Unreadable) else \
                f"expected a JSON object, got {_kind(doc)}"
            warn(where, problem, "hit ratio and server request count")
            cache_known = requests_known = False
            raw.append(dict(label))
            continue
        if not _count_ok(doc, "requests"):
            warn(where, _count_problem(doc, "requests"), "server request count")
            requests_known = False
        cache = doc.get("cache")
        if cache is not None and not isinstance(cache, dict):
            warn(where, f"'cache' must be an object, got {_kind(cache)}", "hit ratio")
            cache_known = False
        elif cache and cache.get("mode") != "none":
            broken = [key for key in ("hits", "misses") if not _count_ok(cache, key)]
            for key in broken:
                warn(where, _count_problem(cache, f"{key}"), "hit ratio")
            cache_known = cache_known and not broken
            if not broken and (cache.get("hits") is not None or cache.get("misses") is not None):
                counted = True
                hits, misses = hits + int(cache.get("hits") or 0), misses + int(cache.get("misses") or 0)
        raw.append({**label, **doc})
    known = counted and cache_known
    return StackMetrics(hits if known else None, misses if known else None, raw, None, tuple(warned),
                        requests_known)


def _count_ok(doc: dict[str, Any], key: str) -> bool:
    value = doc.get(key)
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
                             and value == value and value != float("inf"))


def _count_problem(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    shown = _kind(value) if isinstance(value, str | list | dict | bool) else repr(value)
    return f"'{key}' must be a whole number ≥ 0, got {shown}"


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            dict: "an object"}.get(type(value), "null" if value is None else type(value).__name__)


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

    def leave(self, deployment: Deployment) -> None:
        """Let go of a deployment without stopping it (`farm stack up`): close what this process holds open."""
        ...

    def clean(self, name: str) -> int:
        """Tear down whatever a dead predecessor left under ``name``; returns how many processes it stopped."""
        ...

    def clean_dead(self) -> int:
        """Tear down every deployment recorded by this driver whose owner process is gone; returns how many
        processes (here) or deployments (on a SUT host) it removed."""
        ...

    def fingerprint(self) -> dict[str, Any] | None:
        """The facts of the host the stack runs on, recorded with each cell; None when it runs here."""
        ...

    def pids(self, deployment: Deployment) -> dict[str, list[int]]:
        """The stack's processes on this host by service, to pin to CPUs and to count their CPU ({} when the
        stack runs elsewhere)."""
        ...
