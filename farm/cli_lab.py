"""The `farm` commands that go through Celery: run (embedded), submit, worker, status, cancel, resume, flower."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from farm.cli import DbOption, _print_results, _write_report, app, err, open_store, out, settings
from farm.durations import format_duration
from farm.errors import FarmError, SpecError
from farm.settings import Settings

NameArg = Annotated[str, typer.Argument(help="the sweep's name")]


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
            self.proc = subprocess.Popen([sys.executable, "-m", "farm", "worker", "--name", name], env=env,
                                        stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def alive(self) -> bool:
        """Whether the worker still runs."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """Warm shutdown (the current task finishes its teardown), then kill the session if it hangs."""
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={params[k]}" for k in ("architecture", "cache", "instances", "users") if k in params)


def _status_table(st: Any) -> Table:
    finished = st.total - st.counts.get("pending", 0) - st.counts.get("running", 0)
    eta = format_duration(st.eta_s) if st.eta_s is not None else "–"
    table = Table(title=f"{st.name}: {st.sweep_status} · {finished}/{st.total} cells · ETA {eta}",
                  title_justify="left")
    for column in ("host", "pending", "running", "done", "failed", "skipped", "cancelled", "running now"):
        table.add_column(column)
    for host, counts in sorted(st.by_host.items()):
        now = "; ".join(_label(r["params"]) for r in st.running if r["host"] == host) or "–"
        table.add_row(host, *(str(counts.get(s, 0)) for s in ("pending", "running", "done", "failed", "skipped",
                                                                "cancelled")), now)
    return table


@app.command()
def run(
    sweep_file: Annotated[Path, typer.Argument(help="the sweep file (YAML)", show_default=False)],
    db: DbOption = None,
    report: Annotated[Path | None, typer.Option("--report", "-o", help="where to write the HTML report "
                                                "[default: reports/NAME.html]")] = None,
) -> None:
    """Run a whole sweep on this machine (embedded broker, local worker); a re-run resumes.

    With FARM_BROKER_URL set, the sweep goes to that broker's workers instead and this command watches it.
    """
    from farm.plan import expand
    from farm.spec import load_sweep
    from scheduler.dispatch import submit

    cfg = settings(db)
    loaded = load_sweep(sweep_file, stacks_dir=cfg.stacks_dir)
    plan = expand(loaded.spec, loaded.manifest)
    store = open_store(cfg)
    name = loaded.spec.name
    try:
        before = store.sweep(name).counts
    except FarmError:
        before = {}
    todo = len(plan.cells) - before.get("done", 0) - before.get("skipped", 0)

    def start(celery: Any) -> None:
        sweep, _tasks = submit(store, celery, loaded)
        state = "new" if sweep.new else f"resuming: {todo} to run"
        out.print(f"[bold]{name}[/]: {len(plan.cells)} cells in {len(plan.groups)} stack configurations "
                  f"({state}) · store {cfg.redacted_database_url()}")

    _drive(cfg, store, name, start)
    _finish(store, name, report)


def _drive(cfg: Settings, store: Any, name: str, start: Any) -> None:
    """Start the work (on an embedded broker with a local worker, or on the lab's) and follow it to the end;
    Ctrl-C cancels what runs locally and leaves the store consistent."""
    from farm.host import fingerprint
    from scheduler.app import make_app
    from scheduler.control import status

    with _broker(cfg) as (url, embedded):
        celery = make_app(cfg, url)
        worker = LocalWorker(cfg, url, cfg.host_name or fingerprint()["name"]) if embedded else None
        try:
            start(celery)
            _watch(store, name, worker, status)
        except KeyboardInterrupt:
            if not embedded:  # the lab's workers go on; only this watcher stops
                err.print(f"[yellow]stopped watching; the sweep goes on (`farm cancel {name}` stops it)[/]")
                raise
            err.print("[yellow]stopping: the running cell is cancelled and its stack torn down …[/]")
            store.cancel(name)
            _wait_idle(store, name, status, 30.0)
            store.set_sweep_status(store.sweep(name).id, "interrupted")
            raise
        finally:
            if worker is not None:
                worker.stop()


def _finish(store: Any, name: str, report: Path | None) -> None:
    """Settle the sweep, print its results and crossover, write the report, exit 0 or 1."""
    store.settle(name)
    final = store.sweep(name)
    _print_results(store, name)
    path = report or Path("reports") / f"{name}.html"
    _write_report(store, name, path)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(final.counts.items()))
    out.print(f"cells: {counts} · report: [bold]{path}[/]")
    raise typer.Exit(1 if final.counts.get("failed") else 0)


def _watch(store: Any, name: str, worker: LocalWorker | None, status: Any) -> None:
    """Follow a sweep until no cell waits or runs, printing a line per finished cell."""
    seen = -1
    with _signals_as_interrupt():
        while True:
            st = status(store, name)
            finished = st.total - st.counts.get("pending", 0) - st.counts.get("running", 0)
            if finished != seen:
                now = "; ".join(_label(r["params"]) for r in st.running) or "–"
                eta = format_duration(st.eta_s) if st.eta_s is not None else "–"
                out.print(f"{finished}/{st.total} cells finished · running: {now} · ETA {eta}", highlight=False)
                seen = finished
            if st.finished:
                return
            if worker is not None and not worker.alive():
                raise FarmError("the local worker exited unexpectedly; see farm-artefacts/worker.log")
            time.sleep(0.5)


def _wait_idle(store: Any, name: str, status: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and status(store, name).counts.get("running", 0):
        time.sleep(0.3)


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM is handled like Ctrl-C; a second signal while cleaning up is ignored."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: Any) -> None:
        for s in previous:
            signal.signal(s, lambda *_: err.print("[yellow]cleaning up, please wait …[/]"))
        raise KeyboardInterrupt

    for s in previous:
        signal.signal(s, handler)
    yield  # handlers stay in place until the command ends, so cleanup is not interrupted


@app.command()
def refine(
    name: NameArg,
    points: Annotated[int, typer.Option(min=1, max=9, help="new load levels inside each bracket")] = 1,
    metric: Annotated[str, typer.Option(help="latency metric of the crossover")] = "p95_ms",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the cells that would be added")] = False,
    db: DbOption = None,
) -> None:
    """Narrow each crossover: add cells between the two grid loads that bracket it, and run them."""
    from farm.plan import refinement
    from farm.report.build import analysis_for
    from scheduler.dispatch import enqueue

    cfg = settings(db)
    store = open_store(cfg)
    analysis, _provenance = analysis_for(store, name, metric=metric)
    brackets = [({"cache": c.cache, "instances": c.instances}, c.bracket[0], c.bracket[1])
                for c in analysis.crossovers if c.bracket is not None and c.bracket[1] - c.bracket[0] > 1]
    if not brackets:
        out.print(f"{name}: no crossover lies between two grid loads; nothing to refine")
        return
    spec, _text = store.sweep_spec(name)
    sweep = store.sweep(name)
    cells = refinement(name, store.group_configs(sweep.id), brackets, int(spec.get("repetitions", 1)), points)
    for match, low, high in brackets:
        out.print(f"cache {match['cache']}, {match['instances']} instance(s): crossover between {low} and {high} "
                  f"users → adding {sorted({c.users for c in cells if c.params['cache'] == match['cache']})}")
    if dry_run:
        out.print(f"{len(cells)} cell(s) would be added (dry run)")
        return
    added = store.add_cells(name, cells)
    out.print(f"{name}: {added} new cell(s)")

    def start(celery: Any) -> None:
        enqueue(store, celery, sweep, store.reopen(name), spec.get("targets") or None)

    _drive(cfg, store, name, start)
    _finish(store, name, None)


@app.command()
def submit(
    sweep_file: Annotated[Path, typer.Argument(help="the sweep file (YAML)", show_default=False)],
    db: DbOption = None,
) -> None:
    """Validate, plan, store and enqueue a sweep on the lab's broker (FARM_BROKER_URL); returns at once."""
    from farm.spec import load_sweep
    from scheduler.app import make_app
    from scheduler.dispatch import submit as submit_sweep

    cfg = settings(db)
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; name the lab's Redis (redis://:PASSWORD@host:6379/0), "
                        "or use `farm run` on one machine")
    loaded = load_sweep(sweep_file, stacks_dir=cfg.stacks_dir)
    store = open_store(cfg)
    sweep, tasks = submit_sweep(store, make_app(cfg), loaded)
    out.print(f"submitted [bold]{sweep.name}[/] (id {sweep.id}): {sweep.total} cells in {tasks} task(s)")


@app.command()
def worker(
    name: Annotated[str, typer.Option("--name", "-n", help="this host's worker name (its own queue)")],
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "INFO",
) -> None:
    """Run this host's worker: one cell at a time, its own queue and the shared one, events on for Flower."""
    from workers.main import run_worker

    cfg = settings()
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; name the lab's Redis, e.g. redis://:PASSWORD@host:6379/0")
    run_worker(cfg.model_copy(update={"host_name": name}), name, loglevel=loglevel)


@app.command("status")
def status_(
    name: NameArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="refresh every second until it finishes")] = False,
    db: DbOption = None,
) -> None:
    """Cells by status and host, the running cell of each worker, ETA, failed cells with stage and error."""
    from scheduler.control import status

    store = open_store(settings(db))
    st = status(store, name)
    if watch:
        with Live(_status_table(st), console=out, refresh_per_second=2) as live:
            while not st.finished:
                time.sleep(1.0)
                st = status(store, name)
                live.update(_status_table(st))
    else:
        out.print(_status_table(st))
    for f in st.failed:
        out.print(f"[red]failed[/] {f['id']} ({_label(f['params'])}): {f['stage']}/{f['category']}: {f['message']}",
                  highlight=False)


@app.command()
def cancel(name: NameArg, db: DbOption = None) -> None:
    """Cancel a sweep: queued work dropped, running Locust stopped, stacks torn down, cells marked cancelled."""
    from scheduler.control import status

    cfg = settings(db)
    store = open_store(cfg)
    store.cancel(name)
    _wait_idle(store, name, status, 20.0)
    st = status(store, name)
    out.print(f"{name}: cancelled ({st.counts.get('cancelled', 0)} cells cancelled, "
              f"{st.counts.get('running', 0)} still stopping)")


@app.command()
def resume(name: NameArg, db: DbOption = None) -> None:
    """Enqueue a sweep's unfinished cells again (failed, cancelled or never run)."""
    from scheduler.app import make_app
    from scheduler.control import resume as resume_sweep

    cfg = settings(db)
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; to resume on this machine, run `farm run SWEEP.yaml` again")
    store = open_store(cfg)
    spec, _text = store.sweep_spec(name)
    tasks = resume_sweep(store, make_app(cfg), name, spec.get("targets") or None)
    out.print(f"{name}: {tasks} task(s) enqueued")


@app.command()
def flower(
    address: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5555,
) -> None:
    """Start Flower on the farm's Celery app; basic auth (FARM_FLOWER_AUTH=user:password) is required off
    loopback."""
    from scheduler.app import make_app

    cfg = settings()
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; Flower watches the lab's broker")
    loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if cfg.flower_auth is not None:
        if ":" not in cfg.flower_auth.get_secret_value():
            raise SpecError("FARM_FLOWER_AUTH must be user:password")
        os.environ["FLOWER_BASIC_AUTH"] = cfg.flower_auth.get_secret_value()  # not on the command line
    elif not loopback:
        raise SpecError(f"Flower would listen on {address} without a password; set FARM_FLOWER_AUTH=user:password")
    make_app(cfg).start(argv)
