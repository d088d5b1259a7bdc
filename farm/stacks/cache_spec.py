"""A manifest's cache reset and cache statistics that need no endpoint in the application (#17): a command run in
a compose service or a restart of services, and a Redis cache's own counters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecReset(_Frozen):
    """A command run in the first running replica of a compose service (``docker compose exec``)."""

    service: str = Field(min_length=1)
    command: tuple[str, ...] = Field(min_length=1)


class ResetAction(_Frozen):
    """A cache reset without an HTTP endpoint: a command run in a service, and/or a restart of named services."""

    exec: ExecReset | None = None
    restart: tuple[str, ...] = Field(default=(), description="compose services restarted (and waited for)")

    @model_validator(mode="after")
    def _something(self) -> ResetAction:
        if self.exec is None and not self.restart:
            raise ValueError("a reset needs `exec: {service: S, command: [...]}` and/or `restart: [services]`")
        return self


class RedisStats(_Frozen):
    """Where the farm reads a Redis cache's hits and misses itself (``INFO stats``: keyspace_hits/misses)."""

    service: str = Field(min_length=1, description="the compose service running redis-server")
    command: tuple[str, ...] = Field(default=("redis-cli", "INFO", "stats"), min_length=1,
                                     description="how to ask it, run in the service")


class CacheStats(_Frozen):
    """A cache whose hit ratio the farm reads from the cache itself, not from the app's metrics."""

    redis: RedisStats
