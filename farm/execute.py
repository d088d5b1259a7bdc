"""Execution of one cell group: provision once, then for each cell reset, load, collect, store; always tear down.

This is the domain code behind both `farm run` (in this process) and a lab worker's Celery task.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import CancelledError, FarmError
from farm.load.runner import LoadRequest, LoadRunner
from farm.load.stats import LoadResult
from farm.spec import LoadedSweep, StopWhen, locustfile_for
from farm.stacks.driver import Deployment, StackDriver, StackMetrics
from farm.store.models import CellRow
from farm.store.repository import Store


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


def deployment_name(sweep_name: str, group_id: str) -> str:
    """The deterministic name of a group's deployment, so a retry can find and remove what a crash left."""
    return f"{sweep_name}-{group_id}"


def execute_group(ctx: ExecutionContext, loaded: LoadedSweep, group_id: str) -> dict[str, int]:
    """Run every unfinished cell of a group on one provisioning of its stack; returns counts by status."""
    sweep_name, config, cells = ctx.store.group_work(group_id)
    counts: dict[str, int] = {}
    if not cells:
        return counts
    deployment: Deployment | None = None
    name = deployment_name(sweep_name, group_id)
    remaining = [c.id for c in cells]
    try:
        deployment = ctx.driver.up(loaded.manifest, config, name)
        ctx.driver.ready(deployment, time.monotonic() + ctx.ready_timeout_s)
        ctx.driver.check_instances(deployment)
        saturated: dict[int, int] = {}  # repetition -> users level that crossed stop_when
        for cell in cells:
            if ctx.cancel.is_set():
                raise CancelledError("cancelled")
            if cell.repetition in saturated:
                _skip(ctx, cell, saturated[cell.repetition])
                status = "skipped"
            else:
                status, result = _execute_cell(ctx, loaded, deployment, cell)
                if result is not None and ctx.stop_when is not None and ctx.stop_when.crossed(
                        result.total.error_ratio, result.total.p95_ms):
                    saturated[cell.repetition] = cell.users
            remaining.remove(cell.id)
            counts[status] = counts.get(status, 0) + 1
    except (KeyboardInterrupt, CancelledError):
        ctx.store.record_failure(remaining[:1], "load", "cancel", "cancelled by the user", status="cancelled")
        ctx.store.record_failure(remaining[1:], "queued", "cancel", "not run: cancelled", status="pending")
        raise
    except FarmError as exc:
        stage = "provision" if deployment is None else exc.category
        ctx.store.record_failure(remaining, stage, exc.category, str(exc))
        counts["failed"] = counts.get("failed", 0) + len(remaining)
    finally:
        if deployment is not None:
            ctx.driver.down(deployment)
        else:
            ctx.driver.clean(name)
    return counts


def _skip(ctx: ExecutionContext, cell: CellRow, at_users: int) -> None:
    message = f"skipped (saturated): the stack crossed stop_when at {at_users} users"
    ctx.store.record_failure([cell.id], "load", "saturated", message, status="skipped")


def _execute_cell(ctx: ExecutionContext, loaded: LoadedSweep, deployment: Deployment,
                  cell: CellRow) -> tuple[str, LoadResult | None]:
    """Reset, warm up, measure, collect and store one cell; a load failure fails only this cell."""
    ctx.store.mark_running(cell.id, ctx.host)
    ctx.driver.reset(deployment)
    ctx.store.stage(cell.id, "reset")
    spec = loaded.spec
    request = LoadRequest(locustfile=locustfile_for(loaded), host=deployment.entry_url, users=cell.users,
                          spawn_rate=spec.load.spawn_rate, duration_s=spec.load.duration,
                          warmup_s=spec.load.warmup, artefacts=ctx.artefacts / spec.name / cell.id,
                          processes=spec.load.processes)
    before: list[StackMetrics] = []

    def measure_start() -> None:
        before.append(ctx.driver.metrics(deployment))

    try:
        result: LoadResult = ctx.runner.run(request, ctx.cancel, measure_start)
    except CancelledError:
        raise
    except FarmError as exc:
        ctx.store.record_failure([cell.id], "load", exc.category, str(exc))
        return "failed", None
    metrics = ctx.driver.metrics(deployment)
    if before:
        metrics = metrics.minus(before[0])
    ctx.store.record_result(cell.id, result, metrics)
    return "done", result
