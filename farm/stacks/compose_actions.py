"""Reset and cache metrics of a compose project without HTTP endpoints: run in its services, on the SUT host.

A team's stack rarely has `/admin/reset` or `/metrics`. Its manifest may instead say ``reset: {exec: {service:
redis, command: [redis-cli, FLUSHALL]}}`` (a command run in the service's first replica, `docker compose exec -T`)
and/or ``reset: {restart: [app]}`` (`docker compose restart`, then the farm waits for health again), and
``cache: {redis: {service: redis}}``: the farm reads ``keyspace_hits`` and ``keyspace_misses`` from Redis'
own ``INFO stats``, a hit ratio without instrumenting the application.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from farm.errors import MetricsError, ResetError
from farm.stacks.cache_spec import ResetAction
from farm.stacks.manifest import StackManifest
from farm.stacks.redis_stats import parse_info
from farm.text import tail

RESET_TIMEOUT_S = 120.0
STATS_TIMEOUT_S = 30.0


def reset_action(manifest: StackManifest) -> ResetAction | None:
    """The manifest's reset when it is an action (not an HTTP path)."""
    return manifest.reset if isinstance(manifest.reset, ResetAction) else None


def run_reset(conn: Any, compose: Sequence[str], project: str, action: ResetAction,
              env: Mapping[str, str]) -> None:
    """Run the reset's command in its service, then restart the named services (`--wait`-free: the caller
    polls health again); ResetError naming the service and the command's last output otherwise."""
    base = [*compose, "-p", project]
    if action.exec is not None:
        argv = [*base, "exec", "-T", action.exec.service, *action.exec.command]
        result = conn.run(argv, timeout=RESET_TIMEOUT_S, check=False, env=env)
        if result.code != 0:
            raise ResetError(f"cache reset failed: {' '.join(action.exec.command)} in {action.exec.service} "
                             f"exited {result.code}: {_said(result)}")
    if action.restart:
        result = conn.run([*base, "restart", "--timeout", "10", *action.restart], timeout=RESET_TIMEOUT_S,
                          check=False, env=env)
        if result.code != 0:
            raise ResetError(f"cache reset failed: restarting {', '.join(action.restart)}: "
                             f"{_said(result)}")


def redis_hits(conn: Any, compose: Sequence[str], project: str, manifest: StackManifest,
               env: Mapping[str, str]) -> tuple[int, int] | None:
    """Redis' own keyspace hits and misses (``INFO stats``) in the manifest's cache service, or None without
    ``cache: {redis: ...}``; MetricsError when the service does not answer with them."""
    if manifest.cache is None:
        return None
    redis = manifest.cache.redis
    result = conn.run([*compose, "-p", project, "exec", "-T", redis.service, *redis.command],
                      timeout=STATS_TIMEOUT_S, check=False, env=env)
    stats = parse_info(result.stdout) if result.code == 0 else {}
    try:
        return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])
    except (KeyError, ValueError) as exc:
        raise MetricsError(f"cache statistics of {redis.service}: `{' '.join(redis.command)}` gave no "
                           f"keyspace_hits/keyspace_misses: {_said(result)}") from exc


def _said(result: Any) -> str:
    return tail(result.stderr or result.stdout, limit=200) or "(no output)"
