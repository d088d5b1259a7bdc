"""A Redis cache's own counters as a stack's hit ratio (#17 item 4): ``keyspace_hits`` and ``keyspace_misses`` of
``INFO stats``, for a stack whose application reports no cache figures (``cache: {redis: {service: S}}``).

On a SUT host the compose driver asks inside the service (compose_actions); the process recipe's service listens
on a loopback port of this machine, and the local driver asks it there over TCP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from farm.errors import MetricsError
from farm.stacks.driver import Deployment, StackMetrics

STATS_TIMEOUT_S = 5.0


def parse_info(text: str) -> dict[str, str]:
    """Redis' INFO answer (``# Section`` headers, ``key:value`` lines) as a mapping."""
    pairs = (line.strip().partition(":") for line in text.splitlines() if line.strip() and line[0] != "#")
    return {key: value for key, sep, value in pairs if sep}


def with_cache(counters: StackMetrics, read: Callable[[], tuple[int, int] | None]) -> StackMetrics:
    """The counters with the hits and misses ``read`` gives (None: the stack's own figures stay); an unreadable
    cache is a warning with the hit ratio left empty, like an odd metrics document: never a lost measurement."""
    try:
        cache = read()
    except MetricsError as exc:
        return dataclasses.replace(counters, cache_hits=None, cache_misses=None,
                                   warnings=(*counters.warnings, f"{exc.message}; hit ratio left empty"))
    if cache is None:
        return counters
    return dataclasses.replace(counters, cache_hits=cache[0], cache_misses=cache[1])


def local_redis_hits(deployment: Deployment, timeout: float = STATS_TIMEOUT_S) -> tuple[int, int] | None:
    """The process recipe's Redis service's hits and misses, asked at its first replica's port (None without
    ``cache: {redis: ...}``); MetricsError when it does not answer with them."""
    cache = deployment.manifest.cache
    if cache is None:
        return None
    service = cache.redis.service
    endpoint = next((e for e in deployment.endpoints if e.service == service), None)
    if endpoint is None:
        raise MetricsError(f"cache statistics of {service}: the process recipe runs no service of that name")
    import redis  # the worker's own dependency (Celery's broker); imported only where a stack asks for it

    try:
        client = redis.Redis(host=endpoint.host, port=endpoint.port, socket_timeout=timeout,
                             socket_connect_timeout=timeout)
        try:
            stats = client.info("stats")
        finally:
            client.close()
        return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])
    except (redis.RedisError, KeyError, TypeError, ValueError) as exc:
        raise MetricsError(f"cache statistics of {service} ({endpoint.host}:{endpoint.port}): INFO stats gave no "
                           f"keyspace_hits/keyspace_misses: {' '.join(str(exc).split())[:200]}") from exc
