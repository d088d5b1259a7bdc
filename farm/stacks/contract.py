"""The stack contract over HTTP, the same for every driver: connectivity check, cache reset and metrics of each
app instance (see "Writing a stack" in the README)."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from farm.errors import MetricsError, ReadinessError, ResetError
from farm.stacks.driver import TOKEN_HEADER, Deployment, Endpoint, StackMetrics, Unreadable, read_metrics
from farm.stacks.probe import http_json, http_ok, http_post

METRICS_TIMEOUT_S = 5.0  # a reading that takes longer is a warning: the window's edges cannot wait


class Http(Protocol):
    """How the contract's requests reach a replica: directly from here, or from inside its project's network."""

    def ok(self, endpoint: Endpoint, path: str, timeout: float) -> bool:
        """Whether GET path answers 2xx."""
        ...

    def post(self, endpoint: Endpoint, path: str, timeout: float, headers: dict[str, str]) -> None:
        """POST an empty body; OSError (with the reason) unless it answers 2xx."""
        ...

    def documents(self, endpoints: list[Endpoint], path: str, timeout: float, headers: dict[str, str]) -> list[Any]:
        """GET path's JSON body of each endpoint, in order, or the exception its request gave: OSError when it
        failed (ConnectionRefusedError: nothing listens), ValueError or RecursionError when it is not JSON."""
        ...


class Direct:
    """The contract's requests sent from this process (the generator) to the replica's published port."""

    def ok(self, endpoint: Endpoint, path: str, timeout: float) -> bool:
        try:
            return http_ok(endpoint.url + path, timeout)
        except http.client.HTTPException:  # not an HTTP answer (another kind of server on that port)
            return False

    def post(self, endpoint: Endpoint, path: str, timeout: float, headers: dict[str, str]) -> None:
        http_post(endpoint.url + path, timeout, headers=headers)

    def documents(self, endpoints: list[Endpoint], path: str, timeout: float, headers: dict[str, str]) -> list[Any]:
        return [attempt(partial(http_json, e.url + path, timeout=timeout, headers=headers)) for e in endpoints]


DIRECT = Direct()


def attempt(request: Callable[[], Any]) -> Any:
    """The request's answer, or the exception a failed request or an unreadable document gave (a value)."""
    try:
        return request()
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than Python parses
        return exc


def check_instances(deployment: Deployment, http: Http = DIRECT) -> int:
    """The classic connectivity check: every instance and the entry answer the health URL; returns how many."""
    health = deployment.manifest.health
    silent = [e for e in deployment.instances if not http.ok(e, health, 2.0)]
    if silent or not http.ok(deployment.entry, health, 2.0):
        names = ", ".join(f"{e.service}#{e.replica}" for e in silent) or "the entry point"
        raise ReadinessError(f"connectivity check failed: {names} did not answer")
    return len(deployment.instances)


def reset(deployment: Deployment, http: Http = DIRECT) -> None:
    """POST the manifest's reset path on every instance; any 2xx is success, the body is ignored."""
    path = deployment.manifest.reset
    if not isinstance(path, str):  # none, or an action the driver runs (compose_actions)
        return
    for endpoint in deployment.instances:
        url = endpoint.url + path
        try:
            http.post(endpoint, path, 5.0, token_header(deployment))
        except OSError as exc:
            raise ResetError(f"cache reset failed on {endpoint.service}#{endpoint.replica}: POST {url}: "
                             f"{reason(exc)}") from exc


def metrics(deployment: Deployment, http: Http = DIRECT) -> StackMetrics:
    """Read every instance's metrics document and sum its cache hits, misses and requests.

    An instance that answers something that is not JSON, or too slowly, gives a warning in the result instead
    (metrics never cost a measurement); one where nothing listens any more has died: MetricsError.
    """
    path = deployment.manifest.metrics
    if path is None:
        return StackMetrics(None, None, [])
    docs: list[tuple[str, Any]] = []
    answers = http.documents(deployment.instances, path, METRICS_TIMEOUT_S, token_header(deployment))
    for endpoint, doc in zip(deployment.instances, answers, strict=True):
        url = endpoint.url + path
        if isinstance(doc, OSError):
            if _refused(doc):  # nothing listens: the instance died, which no warning may hide
                raise MetricsError(f"metrics of {endpoint.service}#{endpoint.replica}: GET {url}: {reason(doc)} "
                                   "(the instance is gone)") from doc
            doc = Unreadable(f"GET failed: {reason(doc)}")
        elif isinstance(doc, (ValueError, RecursionError)):
            doc = Unreadable(f"not JSON ({' '.join(str(doc).split())[:120]})")
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
