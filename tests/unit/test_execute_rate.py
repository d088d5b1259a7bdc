"""A cell group in rate mode through `execute_group`, with an in-memory stack and load generator: the load
request the rate asks for, offered and achieved rate stored, a shortfall flagged, stop_when in req/s offered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from farm.execute import ExecutionContext, execute_group
from farm.load.runner import LoadRequest
from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import StopWhen, parse_sweep
from farm.stacks.driver import Deployment, Endpoint, StackMetrics
from farm.stacks.manifest import Scalar, StackManifest
from farm.store.repository import Store
from tests.conftest import ROOT


class MemoryStack:
    """A stack that is always up and counts nothing: a SUT elsewhere, as far as CPU pinning goes."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def up(self, manifest: StackManifest, params: dict[str, Scalar], name: str) -> Deployment:
        entry = Endpoint("app", 0, "127.0.0.1", 9)
        return Deployment(name, manifest, params, entry, [entry], self.workdir)

    def ready(self, deployment: Deployment, deadline: float) -> None:
        """Always ready."""

    def check_instances(self, deployment: Deployment) -> int:
        return 1

    def reset(self, deployment: Deployment) -> None:
        """Nothing to empty."""

    def metrics(self, deployment: Deployment) -> StackMetrics:
        return StackMetrics(None, None, [])

    def logs(self, deployment: Deployment, lines: int = 20) -> str:
        return ""

    def down(self, deployment: Deployment) -> None:
        """Nothing to stop."""

    def leave(self, deployment: Deployment) -> None:
        """Nothing held open."""

    def clean(self, name: str) -> int:
        return 0

    def clean_dead(self) -> int:
        return 0

    def fingerprint(self) -> dict[str, Any] | None:
        return {"name": "memory"}

    def pids(self, deployment: Deployment) -> dict[str, list[int]]:
        return {}


class ServesUpTo:
    """A load generator against a system that serves at most ``capacity`` req/s at ``latency`` ms."""

    def __init__(self, capacity: float, latency: Callable[[float], float]) -> None:
        self.capacity, self.latency = capacity, latency
        self.requests: list[LoadRequest] = []

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None, on_measure_end: Callable[[], None] | None = None,
            settled: Callable[[], bool] | None = None) -> LoadResult:
        self.requests.append(request)
        offered = request.users / request.pacing_s
        rps = min(offered, self.capacity)
        ms = self.latency(offered)
        n = int(rps * request.duration_s)
        total = EndpointStats("", "Aggregated", n, 0, rps, ms, ms, ms, ms, ms, ms, {int(ms): n})
        return LoadResult((), total, request.duration_s, request.warmup_s)


def run_group(tmp_path: Path, text: str, runner: ServesUpTo, stop_when: StopWhen | None = None) -> list[Any]:
    loaded = parse_sweep(text, source=str(tmp_path / "s.yaml"), base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store = Store(f"sqlite:///{tmp_path / 'farm.db'}")
    store.migrate()
    store.create_or_resume(loaded, plan)
    ctx = ExecutionContext(store=store, driver=MemoryStack(tmp_path), runner=runner, host={"name": "h1"},
                           artefacts=tmp_path / "artefacts", stop_when=stop_when)
    [group] = plan.groups
    execute_group(ctx, loaded, group.id)
    return store.cells(loaded.spec.name)


SWEEP = "name: r\nstack: sleepy\nmatrix: {rate: [20, 100, 200]}\nload: {warmup: 30s, duration: 5s}\n"


def test_each_cell_offers_its_rate_and_one_that_falls_short_is_flagged(tmp_path: Path) -> None:
    # Given a system that serves 100 req/s at most
    runner = ServesUpTo(100.0, lambda offered: 20.0)
    # When a group of cells offering 20, 100 and 200 req/s runs
    cells = run_group(tmp_path, SWEEP, runner)
    # Then Locust was asked for rate × 1 s users paced once a second, without CPU sets (the stack is not here)
    assert [(r.users, r.pacing_s, r.cpus) for r in runner.requests] == [(20, 1.0, None), (100, 1.0, None),
                                                                        (200, 1.0, None)]
    # And each cell stores its offer and what it achieved; only the one that fell short is flagged
    stored = [(c.params["rate"], c.offered_rps, c.achieved_rps, c.rate_saturated, c.cpu_sets) for c in cells]
    assert stored == [(20, 20.0, 20.0, False, None), (100, 100.0, 100.0, False, None),
                      (200, 200.0, 100.0, True, None)]


def test_stop_when_skips_the_higher_rates_and_says_so_in_req_s(tmp_path: Path) -> None:
    # Given a system whose p95 passes 1 s at 100 req/s offered
    runner = ServesUpTo(1000.0, lambda offered: 50.0 if offered < 100 else 2000.0)
    # When the group runs with stop_when p95 ≥ 1 s
    cells = run_group(tmp_path, SWEEP, runner, StopWhen(p95_ms=1000))
    # Then 200 req/s is skipped, naming the rate offered where the stack crossed the limit
    assert [(c.params["rate"], c.status) for c in cells] == [(20, "done"), (100, "done"), (200, "skipped")]
    assert cells[2].error_message == "skipped (saturated): the stack crossed stop_when at 100 req/s offered"
    assert len(runner.requests) == 2
