"""Lab commands on the shared broker and store: submit, worker, status, cancel, resume."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.live import Live

from farm.commands.common import (
    DbOption,
    MaxCellsOption,
    NameArg,
    SweepFileArg,
    open_store,
    out,
    settings,
    styled,
    wait_idle,
)
from farm.commands.views import failure_line, failure_lines, flagged_lines, status_table, varying_keys
from farm.errors import SpecError
from farm.life import CellStatus
from farm.spec import DEFAULT_MAX_CELLS
from farm.stored_spec import stored_spec


def submit(
    sweep_file: SweepFileArg,
    db: DbOption = None,
    max_cells: MaxCellsOption = DEFAULT_MAX_CELLS,
) -> None:
    """Validate, plan, store and enqueue a sweep on the lab's broker (FARM_BROKER_URL); returns at once."""
    from farm.sources import what_runs
    from farm.spec import load_sweep
    from scheduler.app import make_app
    from scheduler.dispatch import submit as submit_sweep

    cfg = settings(db)
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; name the lab's Redis (redis://:PASSWORD@host:6379/0), "
                        "or use `farm run` on one machine")
    loaded = load_sweep(sweep_file, stacks_dir=cfg.stacks_dir, max_cells=max_cells)
    if loaded.spec.sut is not None:
        from farm.remote.hosts import check_sweep_hosts

        check_sweep_hosts(loaded.spec.sut.hosts, cfg.hosts_file, required=False)
    for line in what_runs(loaded):  # the stack's commands and the locustfile are code: say which
        out.print(line)
    store = open_store(cfg)
    sweep, tasks = submit_sweep(store, make_app(cfg), loaded)
    out.print(styled("submitted ", (sweep.name, "bold"), f" (id {sweep.id}): {sweep.total} cells in {tasks} task(s)"))


def worker(
    name: Annotated[str, typer.Option("--name", "-n", metavar="NAME", help="this host's worker name (its own queue)")],
    loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="Celery log level")] = "INFO",
    parent: Annotated[int | None, typer.Option("--parent", hidden=True,
                                               help="stop when this process dies (farm run's own worker)")] = None,
) -> None:
    """Run this host's worker: one cell at a time, its own queue and the shared one, events on for Flower."""
    from workers.main import run_worker

    cfg = settings()
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; name the lab's Redis, e.g. redis://:PASSWORD@host:6379/0")
    run_worker(cfg.model_copy(update={"host_name": name}), name, loglevel=loglevel, parent=parent)


def status_(
    name: NameArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every second until it finishes")] = False,
    db: DbOption = None,
) -> None:
    """Cells by status and host, the running cell of each worker, ETA, failed cells with stage and error."""
    from scheduler.control import status

    store = open_store(settings(db))
    st = status(store, name)
    keys = varying_keys(store.sweep_spec(name)[0])
    shown: set[str] = set()
    if watch:
        st, shown = _watch_status(store, name, st, keys, status)
    else:
        out.print(status_table(st, keys))
    for line in failure_lines(st.failed, keys, skip=shown):
        out.print(line)
    from farm.store.views import flagged_cells

    for line in flagged_lines(flagged_cells(store, store.sweep(name).id), keys):
        out.print(line)


def _watch_status(store: Any, name: str, st: Any, keys: list[str], status: Any) -> tuple[Any, set[str]]:
    """Refresh the status table every second until the sweep ends, printing each cell that fails above it;
    returns the last status and the ids of the failures printed."""
    from farm.commands.progress import EndedFeed

    ended = EndedFeed(store, store.sweep(name).id)
    shown: set[str] = set()
    with Live(status_table(st, keys), console=out, refresh_per_second=2) as live:
        while not st.finished:
            time.sleep(1.0)
            for cell in ended.new():
                if cell.status == CellStatus.FAILED:
                    live.console.print(failure_line(cell.failure(), keys), soft_wrap=True)
                    shown.add(cell.id)
            st = status(store, name)
            live.update(status_table(st, keys))
    return st, shown


def cancel(name: NameArg, db: DbOption = None) -> None:
    """Cancel a sweep: queued work dropped, running Locust stopped, stacks torn down, cells marked cancelled."""
    from scheduler.control import status

    cfg = settings(db)
    store = open_store(cfg)
    store.cancel(name)
    wait_idle(store, name, status, 20.0)
    st = status(store, name)
    out.print(f"{name}: cancelled ({st.counts.get(CellStatus.CANCELLED, 0)} cells cancelled, "
              f"{st.counts.get(CellStatus.RUNNING, 0)} still stopping)")


def resume(name: NameArg, db: DbOption = None) -> None:
    """Enqueue a sweep's unfinished cells again (failed, cancelled or never run)."""
    from scheduler.app import make_app
    from scheduler.control import resume as resume_sweep

    cfg = settings(db)
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; to resume on this machine, run `farm run SWEEP.yaml` again")
    store = open_store(cfg)
    targets = stored_spec(store.sweep_spec(name)[0]).targets
    tasks, stepped = resume_sweep(store, make_app(cfg), name, list(targets) or None, cfg.stacks_dir)
    out.print(f"{name}: {tasks} task(s) enqueued")
    for outcome in stepped:  # a search stopped between two steps takes its next one
        out.print(f"  search step: {outcome.text}")
