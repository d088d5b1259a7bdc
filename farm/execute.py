"""Execution of one cell group: provision once, then for each cell reset, load, collect, store; always tear down.

This is the domain code behind both `farm run` (in this process) and a lab worker's Celery task. Nothing that
goes wrong here may leave a cell "running": every exception — ours or not — fails the affected cell(s) with its
stage and category (``internal`` for the unexpected), the stack is torn down, and the work goes on. Only a stack
that dies under a running group is handed back for another attempt (bounded by the group's attempts).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm import files
from farm.cell_cost import ServiceCpu, cell_cost, containers_by_service
from farm.cells import StoredCell
from farm.cpusets import CpuSets, HostCpu, available_cpus, choose_sets, pin, saturated, stack_processes
from farm.errors import CancelledError, FarmError, StackLostError, StoreError
from farm.life import CellStatus
from farm.load.agreement import compare_requests
from farm.load.omission import check_load
from farm.load.runner import LoadRequest, LoadRunner
from farm.load.stability import Settling
from farm.load.stats import LoadResult
from farm.load_level import LoadLevel
from farm.spec import LoadedSweep, StopWhen, locustfile_for, open_loop
from farm.stacks.driver import Deployment, StackDriver, StackMetrics
from farm.store.repository import Holder, Store

log = logging.getLogger("loadfarm.execute")
ALIVE_CHECK_S = 5.0  # after a failed cell: how long the stack may take to answer again before it counts as lost
RATE_SHORTFALL = 0.95  # open-loop load: a cell that achieves less than this share of its offered rate saturated


@dataclass
class ExecutionContext:
    """What executing a group needs: the store, a driver, a load runner, the host, and a cancel flag."""

    store: Store
    driver: StackDriver
    runner: LoadRunner
    host: dict[str, Any]
    artefacts: Path
    ready_timeout_s: float = 60.0
    cancel: threading.Event = field(default_factory=threading.Event)
    stop_when: StopWhen | None = None
    holder: Holder | None = None  # the worker and attempt holding the group's lease: its writes are guarded by it

    @property
    def attempt(self) -> int:
        """The group's attempt: part of its deployment's name."""
        return self.holder.attempt if self.holder is not None else 1


@dataclass
class GroupOutcome:
    """How a group's execution ended: cell counts by status, and why it should be tried again (if it should)."""

    counts: dict[str, int] = field(default_factory=dict)
    retry: str | None = None
    failures: list[tuple[list[str], str, str, str]] = field(default_factory=list)  # (cells, stage, category, msg)

    def fail(self, ctx: ExecutionContext, cell_ids: list[str], stage: str, category: str, message: str) -> None:
        """Record cells failed, and remember it (a failing teardown adds its note to their error)."""
        ctx.store.record_failure(cell_ids, stage, category, message, holder=ctx.holder)
        self.failures.append((list(cell_ids), stage, category, message))

    def add(self, status: str, n: int = 1) -> None:
        """Count ``n`` cells that ended with ``status``."""
        self.counts[status] = self.counts.get(status, 0) + n


class _CellFailed(Exception):
    """A cell failed at ``stage``; carries the original error."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(stage)
        self.stage, self.error = stage, error


def deployment_name(sweep_name: str, group_id: str, attempt: int = 1) -> str:
    """The name of one attempt's deployment of a group: deterministic, so that a crash's leftovers are found and
    removed, and the attempt's own, so that no other attempt (another worker that took the group over) tears
    down or reuses it."""
    return f"{sweep_name}-{group_id}-a{attempt}"


def describe(error: BaseException) -> tuple[str, str]:
    """(category, one-line message) of any error: a FarmError's own, or ``internal`` with the exception's type."""
    if isinstance(error, FarmError):
        return error.category, " ".join(str(error).split())
    text = " ".join(str(error).split())
    return "internal", f"{type(error).__name__}: {text}" if text else type(error).__name__


def execute_group(ctx: ExecutionContext, loaded: LoadedSweep, group_id: str) -> GroupOutcome:
    """Run every unfinished cell of a group on one provisioning of its stack."""
    sweep_name, config, cells = ctx.store.group_work(group_id)
    outcome = GroupOutcome()
    if not cells:
        return outcome
    deployment: Deployment | None = None
    name = deployment_name(sweep_name, group_id, ctx.attempt)
    remaining = [c.id for c in cells]
    stage = "provision"
    try:
        deployment = ctx.driver.up(loaded.manifest, config, name)
        sets = _cpu_sets(loaded, _stack_pids(ctx.driver, deployment))  # before it warms up its caches and its workers
        stage = "readiness"
        ctx.driver.ready(deployment, time.monotonic() + ctx.ready_timeout_s)
        ctx.driver.check_instances(deployment)
        _run_cells(ctx, loaded, deployment, cells, remaining, outcome, sets)
    except (KeyboardInterrupt, CancelledError):
        ctx.store.record_failure(remaining[:1], "load", "cancel", "cancelled by the user",
                                 status=CellStatus.CANCELLED, holder=ctx.holder)
        ctx.store.record_failure(remaining[1:], "queued", "cancel", "not run: cancelled", status=CellStatus.PENDING,
                                 holder=ctx.holder)
        raise
    except StackLostError as exc:
        # Hand the group back: its unfinished cells wait for another attempt (the store bounds attempts).
        ctx.store.record_failure(remaining, "stack", exc.category, str(exc), status=CellStatus.PENDING,
                                 holder=ctx.holder)
        outcome.retry = str(exc)
    except StoreError:
        raise  # the store is away beyond its retries: nothing can be recorded; the lease expires and is reaped
    except Exception as exc:
        category, message = describe(exc)
        if stage == "readiness" and category == "provision":  # a service exited while starting
            stage = "provision"
        if deployment is not None:
            message += _keep_logs(ctx, deployment, ctx.artefacts / loaded.spec.name / f"group-{group_id}")
        log.warning("group %s failed at %s: %s", group_id, stage, message)
        outcome.fail(ctx, remaining, stage, category, message)
        outcome.add(CellStatus.FAILED, len(remaining))
    finally:
        torn = _teardown(ctx, deployment, name)
        if torn is not None:
            for cell_ids, failed_stage, category, message in outcome.failures:
                ctx.store.record_failure(cell_ids, failed_stage, category, f"{message}; {torn}", holder=ctx.holder)
    return outcome


def _cpu_sets(loaded: LoadedSweep, pids: list[int]) -> CpuSets | None:
    """The generator's and the stack's CPU sets when the stack runs on this host (None when it runs elsewhere:
    no ``pids`` here); the stack's processes are pinned to theirs (see `farm.cpusets`)."""
    if not pids:
        return None
    wanted = loaded.spec.cpus
    available = available_cpus()
    if wanted is not None and not wanted.pin:
        return CpuSets(available, available, note="not pinned: cpus.pin is false")
    sets = choose_sets(available, wanted.generator if wanted else None, wanted.stack if wanted else None,
                       loaded.spec.load.processes)
    if sets.pinned:
        pin(stack_processes(pids), sets.stack, available)
    return sets


def _stack_pids(driver: StackDriver, deployment: Deployment) -> list[int]:
    """The stack's processes on this host (none when it runs on a SUT host)."""
    return [pid for pids in driver.pids(deployment).values() for pid in pids]


def _run_cells(ctx: ExecutionContext, loaded: LoadedSweep, deployment: Deployment, cells: list[StoredCell],
               remaining: list[str], outcome: GroupOutcome, sets: CpuSets | None = None) -> None:
    """Run the cells in order; a failed cell fails alone unless the stack itself is gone."""
    saturated: dict[int, str] = {}  # repetition -> the load level that crossed stop_when
    for cell in cells:
        if ctx.cancel.is_set():
            raise CancelledError("cancelled")
        if cell.repetition in saturated:
            _skip(ctx, cell, saturated[cell.repetition])
            status = CellStatus.SKIPPED
        else:
            try:
                result = _execute_cell(ctx, loaded, deployment, cell, sets)
                status = CellStatus.DONE
                if ctx.stop_when is not None and ctx.stop_when.crossed(result.total.error_ratio,
                                                                       result.total.p95_ms):
                    saturated[cell.repetition] = str(LoadLevel.of(cell.params))
            except _CellFailed as failed:
                if isinstance(failed.error, CancelledError | KeyboardInterrupt | StoreError):
                    raise failed.error from None
                category, message = describe(failed.error)
                lost = _stack_lost(ctx, deployment)
                if lost is not None:
                    raise StackLostError(f"the stack stopped answering during {failed.stage} "
                                         f"({message}); {lost}") from failed.error
                message += _keep_logs(ctx, deployment, ctx.artefacts / loaded.spec.name / cell.id)
                log.warning("cell %s failed at %s: %s", cell.id, failed.stage, message)
                outcome.fail(ctx, [cell.id], failed.stage, category, message)
                status = CellStatus.FAILED
        remaining.remove(cell.id)
        outcome.add(status)


def _stack_lost(ctx: ExecutionContext, deployment: Deployment) -> str | None:
    """Why the stack counts as lost after a failed cell, or None if it still answers."""
    try:
        ctx.driver.ready(deployment, time.monotonic() + ALIVE_CHECK_S)
        ctx.driver.check_instances(deployment)
    except Exception as exc:
        return describe(exc)[1]
    return None


def _keep_logs(ctx: ExecutionContext, deployment: Deployment, folder: Path) -> str:
    """Keep the tail of the stack's logs (`docker compose logs`, or each process's) beside a failure's artefacts;
    returns the note that points at it."""
    try:
        text = ctx.driver.logs(deployment, 40)
        files.write_text(files.private_dir(folder) / "stack-logs.txt", text + "\n")
    except Exception as exc:  # a courtesy of the failure report: never hide the failure itself
        log.warning("stack logs unavailable: %s", describe(exc)[1])
        return ""
    return f" (stack logs: {folder / 'stack-logs.txt'})"


def _teardown(ctx: ExecutionContext, deployment: Deployment | None, name: str) -> str | None:
    """Take the stack down; a failing teardown is logged and returned (never allowed to hide the group's own
    outcome)."""
    try:
        if deployment is not None:
            ctx.driver.down(deployment)
        else:
            ctx.driver.clean(name)
    except Exception as exc:
        message = describe(exc)[1]
        log.error("teardown of %s failed: %s", name, message)
        return message
    return None


def _skip(ctx: ExecutionContext, cell: StoredCell, at_load: str) -> None:
    message = f"skipped (saturated): the stack crossed stop_when at {at_load}"
    ctx.store.record_failure([cell.id], "load", "saturated", message, status=CellStatus.SKIPPED, holder=ctx.holder)


def _offered(cell: StoredCell) -> float | None:
    """The requests/s a cell offers (open-loop load), or None for a users cell."""
    return LoadLevel.of(cell.params).offered_rps


def _load_request(ctx: ExecutionContext, loaded: LoadedSweep, deployment: Deployment, cell: StoredCell,
                  sets: CpuSets | None) -> LoadRequest:
    """The Locust run of a cell: its users, or those its rate needs, paced; on the generator's CPUs if pinned."""
    spec = loaded.spec
    level = LoadLevel.of(cell.params)
    users, pacing = open_loop(level.value, spec.load) if level.open_loop else (level.users, 0.0)
    return LoadRequest(locustfile=locustfile_for(loaded), host=deployment.entry_url, users=users,
                       spawn_rate=spec.load.spawn_rate, duration_s=spec.load.duration, warmup_s=spec.load.warmup,
                       artefacts=ctx.artefacts / spec.name / cell.id, processes=spec.load.processes,
                       until_stable=spec.load.warmup_until_stable, pacing_s=pacing,
                       cpus=tuple(sorted(sets.generator)) if sets is not None and sets.pinned else None)


def _conditions(result: LoadResult, offered: float | None, sets: CpuSets | None,
                cpu: dict[str, Any] | None) -> dict[str, Any]:
    """What a cell records beside its measurements: the rate offered and whether it was achieved, the CPU sets
    and the host's CPU use over the window, with the generator's run-queue wait (also when the stack ran
    elsewhere: then it is all ``host_cpu`` holds)."""
    waited = {} if result.generator_wait_ms is None else {"generator_wait_ms": result.generator_wait_ms}
    return {"offered_rps": offered,
            "rate_saturated": None if offered is None else result.completed_rps < RATE_SHORTFALL * offered,
            "cpu_sets": sets.as_json() if sets is not None else None,
            "host_cpu": {**cpu, **waited} if cpu is not None else (waited or None), "host_saturated": saturated(cpu)}


def _execute_cell(ctx: ExecutionContext, loaded: LoadedSweep, deployment: Deployment,
                  cell: StoredCell, sets: CpuSets | None = None) -> LoadResult:
    """Reset, warm up, measure, collect and store one cell; raises _CellFailed with the stage that failed."""
    stage = "start"
    before: list[StackMetrics] = []
    after: list[StackMetrics] = []  # read when the window closes, while the load's grace period runs
    host_cpu = HostCpu(sets, _stack_pids(ctx.driver, deployment)) if sets is not None else None
    usage: list[dict[str, Any] | None] = []
    service_cpu = ServiceCpu(ctx.driver.pids(deployment))  # per service, for the cell's cost
    used: list[dict[str, float] | None] = []
    warned: list[str] = []  # the stack's metrics that broke the contract: kept with the cell, never failing it

    def read() -> StackMetrics:
        reading = ctx.driver.metrics(deployment)
        warned.extend(w for w in reading.warnings if w not in warned)
        return reading

    def measure_start() -> None:
        nonlocal stage
        stage = "metrics"
        before.append(read())  # first: the stack's counters must match Locust's window
        if host_cpu is not None:
            host_cpu.start()
        service_cpu.start()
        stage = "load"

    def measure_end() -> None:
        nonlocal stage
        stage = "metrics"
        after.append(read())
        if host_cpu is not None:
            usage.append(host_cpu.stop())
        used.append(service_cpu.stop())
        stage = "load"

    settling = Settling(earliest=0.0)

    def settled() -> bool:
        nonlocal stage
        stage = "metrics"
        now = read()
        stage = "load"
        counts = [d["requests"] for d in now.raw if isinstance(d.get("requests"), int)]
        return settling.add(time.monotonic(), sum(counts) if counts else None, now.cache_hits, now.cache_misses)

    try:
        ctx.store.mark_running(cell.id, ctx.host, holder=ctx.holder)
        stage = "reset"
        ctx.driver.reset(deployment)
        if sets is not None and sets.pinned:  # a process the stack started since (a respawned worker) too
            pin(stack_processes(_stack_pids(ctx.driver, deployment)), sets.stack, available_cpus())
        ctx.store.stage(cell.id, "reset", holder=ctx.holder)
        request = _load_request(ctx, loaded, deployment, cell, sets)
        stage = "load"
        settling.earliest = time.monotonic() + request.users / request.spawn_rate  # never before the ramp's end
        result: LoadResult = ctx.runner.run(request, ctx.cancel, measure_start, measure_end, settled)
        stage = "metrics"
        metrics = after[0] if after else read()
        agreement = None
        if before and before[0].requests_known and metrics.requests_known:
            total = result.total
            in_flight = total.rps * (total.mean_ms or 0.0) / 1000.0  # Little's law, per window edge
            agreement = compare_requests(total.requests, before[0].raw, metrics.raw, deployment.entry.service,
                                         in_flight=in_flight)
        if before:
            metrics = metrics.minus(before[0])
        stage = "store"
        if host_cpu is not None and not usage:  # the window did not close before Locust stopped
            usage.append(host_cpu.stop())
        local = used[0] if used else service_cpu.stop()
        cpu_s, seen = (local, service_cpu.replicas()) if local else containers_by_service(metrics.resources,
                                                                                           deployment.name)
        check = check_load(result, request.users, request.pacing_s > 0)
        ctx.store.record_result(cell.id, result, metrics, agreement, holder=ctx.holder,
                                warnings=[*warned, *check.warnings] or None,
                                **_conditions(result, _offered(cell), sets, usage[0] if usage else None),
                                **cell_cost(loaded.manifest, cell.params, result.total.requests, cpu_s, seen),
                                **check.as_extras())
        return result
    except (KeyboardInterrupt, Exception) as exc:
        raise _CellFailed(stage, exc) from exc
