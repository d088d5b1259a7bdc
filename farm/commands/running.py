"""`farm run` and `farm refine`: run cells on this machine (embedded broker, local worker) or watch the lab run them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from farm.commands.common import (
    DbOption,
    MaxCellsOption,
    NameArg,
    SweepFileArg,
    err,
    open_store,
    out,
    settings,
    styled,
    wait_idle,
)
from farm.commands.progress import EndedFeed, display_for
from farm.commands.results import print_results, write_html_report
from farm.commands.searching import ProbeFeed
from farm.commands.views import varying_keys
from farm.errors import FarmError
from farm.life import FINISHED, CellStatus, SweepStatus
from farm.settings import Settings
from farm.spec import DEFAULT_MAX_CELLS


@contextlib.contextmanager
def _broker(cfg: Settings) -> Iterator[tuple[str, bool]]:
    """The configured broker, or an embedded one; yields (url, embedded)."""
    if cfg.broker_url is not None:
        yield cfg.broker_url.get_secret_value(), False
        return
    from scheduler.embedded import embedded_broker

    with embedded_broker() as url:
        yield url, True


class LocalWorker:
    """A `farm worker` subprocess on this machine, in its own session, stopped gracefully then firmly."""

    def __init__(self, cfg: Settings, broker_url: str, name: str) -> None:
        log = cfg.artefacts_dir / "worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FARM_BROKER_URL": broker_url, "FARM_DATABASE_URL": cfg.database_url,
               "FARM_ARTEFACTS_DIR": str(cfg.artefacts_dir.resolve())}
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--name", name,
                                          "--parent", str(os.getpid())], env=env,
                                        stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def alive(self) -> bool:
        """Whether the worker still runs."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """Warm shutdown (the current task finishes its teardown), then kill the session if it hangs.

        TERM goes to the worker's main process only: Celery then lets the pool finish its task — the last
        group's teardown may still run after its last cell is stored. TERM on the pool process would kill it
        mid-teardown and leave the stack behind.
        """
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(90.0)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def run(
    sweep_file: SweepFileArg,
    db: DbOption = None,
    report: Annotated[Path | None, typer.Option("--report", "-o", metavar="FILE", help="where to write the HTML "
                                                "report \\[default: reports/NAME.html]")] = None,
    max_cells: MaxCellsOption = DEFAULT_MAX_CELLS,
) -> None:
    """Run a whole sweep on this machine (embedded broker, local worker); a re-run resumes.

    With FARM_BROKER_URL set, the sweep goes to that broker's workers instead and this command watches it.
    """
    from farm.plan import expand
    from farm.sources import what_runs
    from farm.spec import load_sweep
    from scheduler.dispatch import submit

    cfg = settings(db)
    loaded = load_sweep(sweep_file, stacks_dir=cfg.stacks_dir, max_cells=max_cells)
    if loaded.spec.sut is not None:
        from farm.remote.hosts import check_sweep_hosts

        check_sweep_hosts(loaded.spec.sut.hosts, cfg.hosts_file, required=True)
    for line in what_runs(loaded):  # the stack's commands and the locustfile are code: say which
        out.print(line)
    plan = expand(loaded.spec, loaded.manifest)
    store = open_store(cfg)
    name = loaded.spec.name
    try:
        before = store.sweep(name).counts
    except FarmError:
        before = {}
    todo = len(plan.cells) - sum(before.get(state, 0) for state in FINISHED)

    def start(celery: Any) -> None:
        sweep, _tasks = submit(store, celery, loaded)
        state = "new" if sweep.new else f"resuming: {todo} to run"
        configs = len({json.dumps(g.config, sort_keys=True, default=str) for g in plan.groups})
        searching = " · capacity search: probes are added as steps finish" if loaded.spec.search else ""
        out.print(styled((name, "bold"), f": {len(plan.cells)} cells in {configs} stack configurations, "
                         f"{len(plan.groups)} provisionings ({state}) · store {cfg.redacted_database_url()}"
                         f"{searching}"))

    _drive(cfg, store, name, start, loaded if loaded.spec.search else None)
    if loaded.spec.search:
        _search_summary(store, loaded)
    _finish(store, name, report)


def _search_summary(store: Any, loaded: Any) -> None:
    """Where each load of the search ended, and how many cells it took."""
    from scheduler.search import outcomes

    found = outcomes(store, loaded)
    out.print(styled(("capacity search", "bold"), f": {store.sweep(loaded.spec.name).total} cells"))
    for outcome in sorted(found, key=lambda o: (o.text.split(":")[0], float(o.trajectory[1]))):
        out.print(f"  {outcome.trajectory[1]} {'req/s' if loaded.spec.load_kind == 'rate' else 'users'}, "
                  f"{outcome.state}: {outcome.text}")


def _drive(cfg: Settings, store: Any, name: str, start: Any, search: Any = None) -> None:
    """Start the work (on an embedded broker with a local worker, or on the lab's) and follow it to the end;
    Ctrl-C cancels what runs locally and leaves the store consistent. With a capacity search (``search``: the
    loaded sweep), a sweep that looks finished takes the search's next step first."""
    from farm.host import fingerprint
    from scheduler.app import make_app
    from scheduler.control import status

    with _broker(cfg) as (url, embedded):
        celery = make_app(cfg, url)
        worker = LocalWorker(cfg, url, cfg.host_name or fingerprint()["name"]) if embedded else None
        try:
            start(celery)
            step = None
            if search is not None:
                from scheduler.search import advance

                step = lambda: bool(advance(store, celery, search))  # noqa: E731 - one call, named for _watch
            _watch(store, name, worker, status, step)
        except KeyboardInterrupt:
            if not embedded:  # the lab's workers go on; only this watcher stops
                err.print(f"stopped watching; the sweep goes on (`farm cancel {name}` stops it)", style="yellow")
                raise
            err.print("stopping: the running cell is cancelled and its stack torn down …", style="yellow")
            store.cancel(name)
            wait_idle(store, name, status, 30.0)
            if worker is not None:
                worker.stop()  # its last words (cancelling what was left) come before the final status
            store.set_sweep_status(store.sweep(name).id, SweepStatus.INTERRUPTED)
            raise
        finally:
            if worker is not None:
                worker.stop()


def _finish(store: Any, name: str, report: Path | None) -> None:
    """Settle the sweep, print its results and crossover, write the report, exit 0 or 1."""
    store.settle(name)
    final = store.sweep(name)
    print_results(store, name)
    path = report or Path("reports") / f"{name}.html"
    write_html_report(store, name, path)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(final.counts.items()))
    out.print(styled(f"cells: {counts} · report: ", (str(path), "bold")))
    raise typer.Exit(1 if final.counts.get(CellStatus.FAILED) else 0)


def _watch(store: Any, name: str, worker: LocalWorker | None, status: Any, step: Any = None) -> None:
    """Follow a sweep until no cell waits or runs: a live bar in a terminal, else a line per ended cell; a failed
    cell's error as soon as it fails; a search's probes as they are added. ``step`` (a search) adds the next
    probes of a sweep that looks finished, and says whether it did."""
    spec, _text = store.sweep_spec(name)
    keys = varying_keys(spec)
    sweep_id = store.sweep(name).id
    ended = EndedFeed(store, sweep_id)
    probes = ProbeFeed(store, sweep_id) if step is not None else None
    with _signals_as_interrupt(), display_for(out, keys) as display:
        while True:
            fresh = ended.new()  # before the status, so that the status counts every cell reported
            st = status(store, name)
            display.update(st, fresh)
            for line in probes.new() if probes is not None else []:
                out.print(line)
            if st.finished and step is not None and _stepped(step, lambda: bool(status(store, name).finished)):
                continue  # the search's next probes wait: added here, or by the worker meanwhile
            if st.finished:
                display.update(st, ended.new())  # a cell that ended between the two reads
                return
            if worker is not None and not worker.alive():
                raise FarmError("the local worker exited unexpectedly; see farm-artefacts/worker.log")
            time.sleep(0.5)




def _stepped(step: Callable[[], bool], finished: Callable[[], bool]) -> bool:
    """Whether a search whose sweep looked finished has next probes waiting: added by ``step`` now, or by the
    worker that finished the last group between the status read and ``step`` (it stores the same step before its
    task returns; then ``step`` adds nothing, and only a fresh status read, ``finished``, shows them waiting —
    without it the watch ended and stopped the local worker with the search's next probes pending)."""
    return step() or not finished()


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM is handled like Ctrl-C; a second signal while cleaning up is ignored."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: Any) -> None:
        for s in previous:
            signal.signal(s, lambda *_: err.print("cleaning up, please wait …", style="yellow"))
        raise KeyboardInterrupt

    for s in previous:
        signal.signal(s, handler)
    yield  # handlers stay in place until the command ends, so cleanup is not interrupted


def refine(
    name: NameArg,
    points: Annotated[int, typer.Option(min=1, max=9, metavar="N", help="new load levels inside each bracket")] = 1,
    metric: Annotated[str, typer.Option(metavar="METRIC", help="latency metric of the crossover: p50_ms, p95_ms "
                                        "or p99_ms")] = "p95_ms",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the cells that would be added")] = False,
    db: DbOption = None,
) -> None:
    """Narrow each crossover: add cells between the two grid loads that bracket it, and run them."""
    from farm.plan import refinement
    from farm.report.build import analysis_for
    from farm.stored_spec import stored_spec
    from scheduler.dispatch import enqueue

    cfg = settings(db)
    store = open_store(cfg)
    analysis, _provenance = analysis_for(store, name, metric=metric)
    spec = stored_spec(store.sweep_spec(name)[0])
    compare = spec.comparison  # a crossover names the cache by its role; the stored groups by the stack's name
    brackets = [(compare.params({"cache": c.cache, "instances": c.instances}), c.bracket[0], c.bracket[1])
                for c in analysis.crossovers if c.bracket is not None and c.bracket[1] - c.bracket[0] > 1]
    if not brackets:
        out.print(f"{name}: no crossover lies between two grid loads; nothing to refine")
        return
    sweep = store.sweep(name)
    axis = spec.load
    cells = refinement(name, store.group_configs(sweep.id), brackets, spec.repetitions, points, axis)
    for match, low, high in brackets:
        added = sorted({c.params[axis] for c in cells if c.params[compare.cache] == match[compare.cache]})
        out.print(f"cache {match[compare.cache]}, {match['instances']} instance(s): crossover between {low} and {high} "
                  f"{analysis.unit} → adding {added}")
    if dry_run:
        out.print(f"{len(cells)} cell(s) would be added (dry run)")
        return
    added = store.add_cells(name, cells)
    out.print(f"{name}: {added} new cell(s)")

    def start(celery: Any) -> None:
        enqueue(store, celery, sweep, store.reopen(name), list(spec.targets) or None)

    _drive(cfg, store, name, start)
    _finish(store, name, None)
