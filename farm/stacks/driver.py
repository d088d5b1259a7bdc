"""The StackDriver port: bring a stack up, wait for it, reset and read it, and always take it down."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from farm.stacks.manifest import Scalar, StackManifest


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

    @property
    def entry_url(self) -> str:
        """Where the load goes."""
        return self.entry.url

    @property
    def instances(self) -> list[Endpoint]:
        """Replicas of app services: connectivity-checked, reset, and read for metrics."""
        instance_services = {s.name for s in self.manifest.local.services if s.instance}
        return [e for e in self.endpoints if e.service in instance_services]


@dataclass(frozen=True)
class StackMetrics:
    """Counters read from the stack's instances (cache hits and misses summed, raw documents kept)."""

    cache_hits: int | None
    cache_misses: int | None
    raw: list[dict[str, Any]]

    def minus(self, before: StackMetrics) -> StackMetrics:
        """The change since an earlier reading (e.g. the end of the warm-up)."""
        def sub(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else max(0, a - b)

        return StackMetrics(sub(self.cache_hits, before.cache_hits), sub(self.cache_misses, before.cache_misses),
                            self.raw)


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
