"""Each sweep's answer for `farm serve`: the report's analysis, its JSON document and its figures, computed by
`farm.report` (one source of truth for numbers and words) in one background thread whenever the sweep's cells
change, so that no page waits for it; pages show the newest answer there is, and say when it is being updated."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from farm.life import CellStatus
from farm.store.repository import Store

Version = tuple[Any, ...]


@dataclass(frozen=True)
class Figure:
    """One figure of the answer: its section id, heading, the verdict it illustrates, and its inline SVG."""

    id: str
    title: str
    description: str
    svg: str


@dataclass(frozen=True)
class Answer:
    """The report of one version of a sweep: the document `farm report --format json` prints, and its figures."""

    version: Version
    document: dict[str, Any]
    difference: Figure | None = None
    curves: list[Figure] = field(default_factory=list)
    cost_rows: list[dict[str, Any]] = field(default_factory=list)  # per cache and load, in the report's words
    cost_frontier: Figure | None = None
    error: str | None = None
    finished_cells: int = 0
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    took_s: float = 0.0


def compute(store: Store, name: str, version: Version, metric: str = "p95_ms") -> Answer:
    """The answer for a sweep as it is now in the store (figures drawn by `farm.report.figures`)."""
    from farm.report import figures
    from farm.report.build import analysis_for, report_document
    from farm.report.html import cheapest_text

    started = time.perf_counter()
    analysis, provenance = analysis_for(store, name, metric=metric)
    document = report_document(analysis, provenance)
    by_comparison = {(v["cache"], v["instances"]): v["description"] for v in document["comparisons"]}
    surface, unit = analysis.surface, analysis.unit
    curves: list[Figure] = []
    difference = None
    if not surface.empty:
        for (cache, instances), part in surface.groupby(["cache", "instances"], sort=True):
            title = f"cache {cache} · {instances} instance{'s' if instances != 1 else ''}"
            svg = figures.svg(figures.latency_curves(part, metric, unit))
            curves.append(Figure(_section_id("curves", str(cache), str(instances)), title,
                                 by_comparison.get((cache, int(instances)), ""), svg))
        if not analysis.difference.empty:
            svg = figures.svg(figures.difference_map(analysis.difference, analysis.crossovers, metric, unit))
            difference = Figure("difference", f"Difference surface: microservices − monolith ({metric})", "", svg)
    cost_rows = [{"cache": c.cache, "load": p["load"], "monolith": cheapest_text(point.monolith, c.price),
                  "microservices": cheapest_text(point.microservices, c.price),
                  "classification": p["classification"]}
                 for c, entry in zip(analysis.cost_benefit, document["cost_benefit"], strict=True)
                 for point, p in zip(c.per_load, entry["per_load"], strict=True)]
    frontier = None
    if not analysis.configs.empty and analysis.cost_benefit:
        slo = analysis.cost_benefit[0].slo_ms
        frontier = Figure("cost-frontier", f"Declared cost against {metric} per load", "",
                          figures.svg(figures.cost_frontier(analysis.configs, metric, unit, slo)))
    done = int((analysis.cells["status"] == CellStatus.DONE).sum()) if "status" in analysis.cells.columns else 0
    return Answer(version, document, difference, curves, cost_rows, frontier, None, done,
                  took_s=time.perf_counter() - started)


def _section_id(*parts: str) -> str:
    """A stable HTML id for a section named by user strings (cache values can hold anything)."""
    return f"{parts[0]}-" + hashlib.sha1("\x00".join(parts[1:]).encode()).hexdigest()[:10]


class Answers:
    """The newest answer of each sweep, brought up to date in one background thread (matplotlib draws in one
    thread only). Requests for a sweep coalesce: however many versions pass while one is computed, the next
    computation is of the newest. A page never waits for it; the JSON API does."""

    def __init__(self, store: Store, compute_answer: Callable[[Store, str, Version], Answer] = compute) -> None:
        self._store, self._compute = store, compute_answer
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="farm-serve-answer")
        self._changed = threading.Condition()
        self._latest: dict[str, tuple[int, Answer]] = {}  # by sweep: (the request it answers, the answer)
        self._wanted: dict[str, tuple[int, Version]] = {}  # by sweep: the newest request and its version
        self._queued: set[str] = set()
        self._requests = 0

    def latest(self, name: str, version: Version) -> Answer | None:
        """The newest answer computed for the sweep (perhaps of an older version); brings it up to date in the
        background when it is not of ``version``."""
        with self._changed:
            found = self._latest.get(name)
            if found is None or found[1].version != version:
                self._request(name, version)
            return None if found is None else found[1]

    def current(self, name: str, version: Version, timeout: float = 300.0) -> Answer:
        """An answer computed from the store as it was at ``version`` or later (waits for it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            found = self._latest.get(name)
            if found is not None and found[1].version == version:
                return found[1]
            request = self._request(name, version)
            while (found := self._latest.get(name)) is None or found[0] < request:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the answer of sweep {name!r} took over {timeout:.0f} s")
                self._changed.wait(left)
            return found[1]

    def close(self) -> None:
        """Stop the background thread (a computation under way is finished first)."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _request(self, name: str, version: Version) -> int:
        """Ask for an answer of ``version`` (the caller holds the lock); returns the request's number."""
        self._requests += 1
        self._wanted[name] = (self._requests, version)
        if name not in self._queued:
            self._queued.add(name)
            self._executor.submit(self._run, name)
        return self._requests

    def _run(self, name: str) -> None:
        with self._changed:
            request, version = self._wanted[name]
            self._queued.discard(name)  # a request from now on queues the next computation
        try:
            answer = self._compute(self._store, name, version)
        except Exception as exc:  # a page says so; the next change of the sweep tries again
            answer = Answer(version, {}, error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        with self._changed:
            self._latest[name] = (request, answer)
            self._changed.notify_all()
