"""Locust statistics as plain values, computed from the full response-time histogram."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from farm.errors import LoadError

TOTAL = "Aggregated"
HISTOGRAMS = ("histogram", "histogram_ok")  # `EndpointStats`' histograms: ms -> count (the store keys them by text)


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The response time below which ``fraction`` of requests fall, as Locust computes it from its histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = int(total * fraction)
    seen = 0
    for value in sorted(histogram, reverse=True):
        seen += histogram[value]
        if total - seen <= wanted:
            return float(value)
    return float(min(histogram))


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """One histogram holding every sample of the given ones (never average percentiles)."""
    merged: dict[int, int] = {}
    for hist in histograms:
        for value, count in hist.items():
            merged[int(value)] = merged.get(int(value), 0) + int(count)
    return merged


@dataclass(frozen=True)
class EndpointStats:
    """Requests, failures, throughput and latency of one endpoint over the measured window."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    histogram: dict[int, int] = field(default_factory=dict, repr=False)
    # Successful requests alone (the aggregate only; None where not measured, e.g. imported runs).
    histogram_ok: dict[int, int] | None = field(default=None, repr=False)
    p50_ok_ms: float | None = None
    p90_ok_ms: float | None = None
    p95_ok_ms: float | None = None
    p99_ok_ms: float | None = None

    @property
    def error_ratio(self) -> float:
        """Failed requests over all requests (0 when none were made)."""
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class UserLoad:
    """One Locust user over the window: requests it completed, time it spent thinking, time it existed in it."""

    completed: int
    think_s: float
    present_s: float
    cls: str = ""  # its Locust user class: users of one class run one scenario, and are compared together


@dataclass(frozen=True)
class LoadResult:
    """What one Locust run measured, after its warm-up."""

    endpoints: tuple[EndpointStats, ...]
    total: EndpointStats
    measured_s: float
    warmup_s: float
    generator_cpu_pct: float | None = None
    generator_saturated: bool = False
    generator_wait_ms: float | None = None  # its mean run-queue wait per time slice (farm.load.schedwait)
    artefacts: str | None = None
    excluded_requests: int | None = None  # requests started outside the window (warm-up, grace), never counted
    # No request vanishes (None where not measured, e.g. imported runs): requests still running at the window's
    # close (counted as failures of kind `unfinished`), late open-loop starts, and each user's share of the window.
    unfinished_requests: int | None = None
    late_starts: int | None = None
    users: tuple[UserLoad, ...] | None = None
    dropped_slots: int | None = None  # open-loop slots due in the window and never offered (`locust_tracking.paced`)
    unfinished_past_window_s: float = 0.0  # the unfinished requests' waits after the window, summed

    @property
    def completed_rps(self) -> float:
        """Requests per second that were answered (with success or an error): the unfinished ones were not."""
        done = self.total.requests - (self.unfinished_requests or 0)
        return done / self.measured_s if self.measured_s > 0 else 0.0


def endpoint_from_locust(entry: Mapping[str, Any], measured_s: float) -> EndpointStats:
    """Convert one entry of Locust's stats JSON (as our plugin writes it) into `EndpointStats`."""
    try:
        hist = {int(float(k)): int(v) for k, v in entry["response_times"].items()}
        requests = int(entry["num_requests"])
        failures = int(entry["num_failures"])
        total_rt = float(entry["total_response_time"])
        max_rt = entry.get("max_response_time")
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(f"Locust statistics are malformed: {exc!r}") from exc
    # Locust counts successful and failed requests in its histogram; both are in these latency figures (the
    # successful requests' own come from the plugin: `with_successful`).
    samples = sum(hist.values())
    return EndpointStats(
        method=str(entry.get("method") or ""),
        name=str(entry["name"]),
        requests=requests,
        failures=failures,
        rps=requests / measured_s if measured_s > 0 else 0.0,
        mean_ms=total_rt / samples if samples else None,
        p50_ms=percentile(hist, 0.50),
        p90_ms=percentile(hist, 0.90),
        p95_ms=percentile(hist, 0.95),
        p99_ms=percentile(hist, 0.99),
        max_ms=float(max_rt) if max_rt is not None and samples else None,
        histogram=hist,
    )


def with_successful(stats: EndpointStats, histogram: Mapping[Any, Any]) -> EndpointStats:
    """``stats`` with the histogram and percentiles of its successful requests alone."""
    try:
        ok = {int(float(k)): int(v) for k, v in histogram.items()}
    except (TypeError, ValueError) as exc:
        raise LoadError(f"Locust statistics are malformed: successful requests' histogram: {exc!r}") from exc
    return replace(stats, histogram_ok=ok, p50_ok_ms=percentile(ok, 0.50), p90_ok_ms=percentile(ok, 0.90),
                   p95_ok_ms=percentile(ok, 0.95),
                   p99_ok_ms=percentile(ok, 0.99))


def parse_locust_stats(document: Mapping[str, Any]) -> LoadResult:
    """Parse the JSON document our Locust plugin writes at the end of a run."""
    try:
        measured_s = float(document["measured_s"])
        warmup_s = float(document.get("warmup_s", 0.0))
        entries = document["stats"]
        total_entry = document["total"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(f"Locust statistics document is incomplete: missing {exc}") from exc
    endpoints = tuple(endpoint_from_locust(e, measured_s) for e in entries)
    total = endpoint_from_locust({**total_entry, "name": TOTAL, "method": ""}, measured_s)
    ok_entry = document.get("total_ok")
    if isinstance(ok_entry, Mapping):
        total = with_successful(total, ok_entry.get("response_times") or {})
    excluded = document.get("excluded_requests")
    load = document.get("load")
    unfinished = late = users = dropped = None
    past = 0.0
    if isinstance(load, Mapping):
        try:
            unfinished, late = int(load["unfinished_requests"]), int(load["late_starts"])
            dropped = int(load.get("dropped_slots", 0))
            users = tuple(UserLoad(int(u["completed"]), float(u["think_s"]), float(u["present_s"]),
                                   str(u.get("cls", ""))) for u in load["users"])
            past = float(load.get("unfinished_past_window_s", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"Locust statistics are malformed: load: {exc!r}") from exc
    return LoadResult(endpoints=endpoints, total=total, measured_s=measured_s, warmup_s=warmup_s,
                      excluded_requests=int(excluded) if isinstance(excluded, int | float) else None,
                      unfinished_requests=unfinished, late_starts=late, users=users, dropped_slots=dropped,
                      unfinished_past_window_s=past)
