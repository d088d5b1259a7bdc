"""The stack contract over HTTP, the same for every driver: connectivity check, cache reset and metrics of each
app instance (see "Writing a stack" in the README)."""

from __future__ import annotations

import http.client
from typing import Any

from farm.errors import MetricsError, ReadinessError, ResetError
from farm.stacks.driver import TOKEN_HEADER, Deployment, StackMetrics, Unreadable, read_metrics
from farm.stacks.probe import http_json, http_ok, http_post

METRICS_TIMEOUT_S = 5.0  # a reading that takes longer is a warning: the window's edges cannot wait


def check_instances(deployment: Deployment) -> int:
    """The classic connectivity check: every instance and the entry answer the health URL; returns how many."""
    health = deployment.manifest.health
    silent = [e for e in deployment.instances if not _answers(e.url + health)]
    if silent or not _answers(deployment.entry_url + health):
        names = ", ".join(f"{e.service}#{e.replica}" for e in silent) or "the entry point"
        raise ReadinessError(f"connectivity check failed: {names} did not answer")
    return len(deployment.instances)


def _answers(url: str) -> bool:
    try:
        return http_ok(url, 2.0)
    except http.client.HTTPException:  # not an HTTP answer (another kind of server on that port)
        return False


def reset(deployment: Deployment) -> None:
    """POST the manifest's reset path on every instance; any 2xx is success, the body is ignored."""
    path = deployment.manifest.reset
    if not isinstance(path, str):  # none, or an action the driver runs (compose_actions)
        return
    for endpoint in deployment.instances:
        url = endpoint.url + path
        try:
            http_post(url, headers=token_header(deployment))
        except OSError as exc:
            raise ResetError(f"cache reset failed on {endpoint.service}#{endpoint.replica}: POST {url}: "
                             f"{reason(exc)}") from exc


def metrics(deployment: Deployment) -> StackMetrics:
    """Read every instance's metrics document and sum its cache hits, misses and requests.

    An instance that answers something that is not JSON, or too slowly, gives a warning in the result instead
    (metrics never cost a measurement); one where nothing listens any more has died: MetricsError.
    """
    if deployment.manifest.metrics is None:
        return StackMetrics(None, None, [])
    docs: list[tuple[str, Any]] = []
    for endpoint in deployment.instances:
        url = endpoint.url + deployment.manifest.metrics
        doc: Any
        try:
            doc = http_json(url, timeout=METRICS_TIMEOUT_S, headers=token_header(deployment))
        except OSError as exc:
            if _refused(exc):  # nothing listens: the instance died, which no warning may hide
                raise MetricsError(f"metrics of {endpoint.service}#{endpoint.replica}: GET {url}: {reason(exc)} "
                                   "(the instance is gone)") from exc
            doc = Unreadable(f"GET failed: {reason(exc)}")
        except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than Python parses
            doc = Unreadable(f"not JSON ({' '.join(str(exc).split())[:120]})")
        docs.append((f"{endpoint.service}#{endpoint.replica} ({url})", doc))
    return read_metrics(docs, [{"service": e.service, "replica": e.replica} for e in deployment.instances])


def _refused(exc: BaseException | None) -> bool:
    """Whether a failed request's cause, however wrapped (urllib's URLError), is a refused connection."""
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError) or isinstance(getattr(exc, "reason", None), ConnectionRefusedError):
            return True
        exc = exc.__cause__
    return False


def token_header(deployment: Deployment) -> dict[str, str]:
    """The header that proves a reset or metrics request comes from the farm (none without a token)."""
    return {TOKEN_HEADER: deployment.token} if deployment.token else {}


def reason(exc: OSError) -> str:
    """The readable reason of a failed request."""
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc) or type(exc).__name__
