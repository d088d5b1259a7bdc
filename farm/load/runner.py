"""The LoadRunner port and its implementation: Locust as a headless subprocess."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from farm import files
from farm.environment import child_environment
from farm.errors import CancelledError, LoadError
from farm.load.schedwait import snapshot, wait_ms_per_slice
from farm.load.stats import LoadResult, parse_locust_stats
from farm.text import tail_file

log = logging.getLogger("loadfarm.load")
PLUGIN = Path(__file__).with_name("locust_plugin.py")
# Load goes on this long after the measured window closes, so that requests started inside it can finish and be
# counted (a request is counted by its start time; one still in flight when Locust stops would be lost).
GRACE_S = 1.0
OPEN_LEAD_S = 0.1  # a settled warm-up ends this long after the farm decides it
# Locust's --run-time is a safety bound this much beyond the window and its grace: the plugin stops Locust once
# they have passed, counted from the test's real start (Locust's timer starts earlier, by its startup).
RUN_TIME_SLACK_S = 10.0
# The plugin waits after the grace, up to this long, for requests started inside the window (its GRACE_EXTENSION_S).
GRACE_EXTENSION_S = 10.0


@dataclass(frozen=True)
class LoadRequest:
    """One cell's load: scenario, target, users, rates and timings, and where to keep artefacts."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    duration_s: float
    warmup_s: float
    artefacts: Path
    processes: int = 1
    until_stable: bool = False  # warmup_s is then the longest warm-up; it ends once `settled` says so
    pacing_s: float = 0.0  # open-loop load: every user starts a task this often (0: the scenario's wait_time)
    cpus: tuple[int, ...] | None = None  # the CPUs Locust may use (its workers inherit them); None: any

    @property
    def grace_s(self) -> float:
        """How long load goes on after the window: GRACE_S, or with open-loop load at least one pacing interval
        (a response within it is no shortfall, so a request started at the window's end must be counted)."""
        return max(GRACE_S, self.pacing_s)


class LoadRunner(Protocol):
    """Generates load against a target and returns what it measured."""

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None,
            on_measure_end: Callable[[], None] | None = None,
            settled: Callable[[], bool] | None = None) -> LoadResult:
        """Run one cell's load to completion (or until ``cancel`` is set).

        ``on_measure_start`` is called once when the warm-up ends and the measured window opens, and
        ``on_measure_end`` once when it closes (load may go on a little, uncounted, for requests in flight).
        With ``request.until_stable``, ``settled`` is asked about once a second during the warm-up whether the
        load has settled; the window opens when it says so (or at the longest warm-up).
        """
        ...


class LocustRunner:
    """Runs Locust as a subprocess in its own session, never imported here (gevent would patch us)."""

    def __init__(self, *, saturation_cpu_pct: float = 90.0, python: str = sys.executable) -> None:
        self.saturation_cpu_pct = saturation_cpu_pct
        self.python = python

    def command(self, request: LoadRequest) -> list[str]:
        """The Locust command line for a request."""
        run_time = math.ceil(request.warmup_s + request.duration_s + request.grace_s + GRACE_EXTENSION_S
                             + RUN_TIME_SLACK_S)
        out = request.artefacts
        return [
            self.python, "-m", "locust",
            "-f", f"{request.locustfile},{PLUGIN}",
            "--headless", "--host", request.host,
            "-u", str(request.users), "-r", str(request.spawn_rate),
            "--run-time", f"{run_time}s",
            "--csv", str(out / "locust"), "--html", str(out / "locust.html"),
            "--only-summary", "--loglevel", "WARNING", "--logfile", str(out / "locust.log"),
            "--exit-code-on-error", "0",
            "--farm-warmup", str(request.warmup_s), "--farm-duration", str(request.duration_s),
            "--farm-stats-out", str(out / "stats.json"),
            *(["--processes", str(request.processes)] if request.processes > 1 else []),
            *(["--farm-until-stable"] if request.until_stable else []),
            *(["--farm-pacing", repr(request.pacing_s), "--farm-grace", repr(request.grace_s)]
              if request.pacing_s > 0 else []),
        ]

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None,
            on_measure_end: Callable[[], None] | None = None,
            settled: Callable[[], bool] | None = None) -> LoadResult:
        """Run Locust, sample its CPU in the measured window, and parse the statistics it wrote."""
        files.private_dir(request.artefacts)
        _SEEN.clear()
        stats_file = request.artefacts / "stats.json"
        window_file = Path(f"{stats_file}.window")
        open_file = Path(f"{stats_file}.open")
        for stale in (stats_file, window_file, open_file):
            stale.unlink(missing_ok=True)
        judge = _Judge(settled, open_file) if request.until_stable and settled is not None else None
        limit = (request.warmup_s + request.duration_s + request.grace_s + GRACE_EXTENSION_S + RUN_TIME_SLACK_S
                 + 30.0)
        with files.open_log(request.artefacts / "locust.out") as out:
            proc = subprocess.Popen(self.command(request), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=child_environment({"PYTHONUNBUFFERED": "1"}))
            try:
                if request.cpus:
                    _confine(proc, request.cpus)
                cpu, wait = self._watch(proc, window_file, limit, cancel, (on_measure_start, on_measure_end), judge)
            except BaseException:
                _stop(proc)
                raise
        if not stats_file.is_file():
            tail = tail_file(request.artefacts / "locust.out")
            raise LoadError(f"Locust exited with code {proc.returncode} and no statistics: {tail}")
        if proc.returncode not in (0, 1):
            # The statistics are written while Locust quits, after the window closed; an error after that (e.g.
            # Locust's CSV history writer racing its own shutdown: "I/O operation on closed file") cannot change
            # them. It is logged beside the cell's artefacts, not hidden.
            log.warning("Locust exited with code %s after writing its statistics: %s", proc.returncode,
                        tail_file(request.artefacts / "locust.out"))
        result = parse_locust_stats(json.loads(stats_file.read_text()))
        if result.total.requests == 0:
            raise LoadError("Locust made no request in the measured window; see locust.log in the artefacts")
        saturated = cpu is not None and cpu >= self.saturation_cpu_pct
        return dataclasses.replace(result, generator_cpu_pct=cpu, generator_saturated=saturated,
                                   generator_wait_ms=wait, artefacts=str(request.artefacts))

    def _watch(self, proc: subprocess.Popen[bytes], window_file: Path, limit_s: float,
               cancel: threading.Event | None,
               callbacks: tuple[Callable[[], None] | None, Callable[[], None] | None],
               judge: _Judge | None = None) -> tuple[float | None, float | None]:
        """Wait for Locust while sampling its CPU share of one core; returns the mean over the measured window, and
        its mean run-queue wait per time slice over the window in ms (`farm.load.schedwait`; None if unknown).

        The window's bounds come from the plugin (``<stats>.window``, wall-clock times); the callbacks are called
        at those instants, so that what the farm reads from the stack covers the same window as Locust's counts.
        """
        started = time.monotonic()
        samples: list[float] = []
        window: tuple[float, float | None] | None = None
        measuring = closed = False
        last_sample = 0.0
        sched = None
        wait: float | None = None
        try:
            ps: psutil.Process | None = psutil.Process(proc.pid)
        except psutil.Error:
            ps = None
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                raise CancelledError("load run cancelled")
            if window is None:
                window = _read_window(window_file)
            if window is None and judge is not None:
                judge.ask()
            time.sleep(_until_next(window, measuring, closed))
            if time.monotonic() - started > limit_s:
                raise LoadError(f"Locust did not finish within {limit_s:.0f}s; it was stopped")
            now = time.time()
            if window is not None and not measuring and now >= window[0]:
                measuring = True
                if callbacks[0] is not None:
                    callbacks[0]()
                if ps is not None:
                    _cpu(ps)  # the next reading covers only the measured window
                    sched = snapshot(ps)
                    last_sample = time.monotonic()
            elif measuring and not closed and window is not None and window[1] is not None and now >= window[1]:
                closed = True
                if ps is not None:
                    wait = wait_ms_per_slice(sched, snapshot(ps))
                if callbacks[1] is not None:
                    callbacks[1]()
            elif measuring and not closed and ps is not None and time.monotonic() - last_sample >= 1.0:
                value = _cpu(ps)
                last_sample = time.monotonic()
                if value is not None:
                    samples.append(value)
        if not closed:
            # The last sample covers Locust's shutdown, not load.
            samples = samples[:-1] if len(samples) > 2 else samples
        return (sum(samples) / len(samples) if samples else None), wait


class _Judge:
    """Asks ``settled`` about once a second; when it answers yes, tells Locust that the window opens now."""

    def __init__(self, settled: Callable[[], bool], open_file: Path) -> None:
        self.settled, self.open_file = settled, open_file
        self.last = 0.0
        self.done = False

    def ask(self) -> None:
        """One question, if a second has passed since the last; writes the open file on a yes."""
        if self.done or time.monotonic() - self.last < 1.0:
            return
        self.last = time.monotonic()
        if self.settled():
            partial = self.open_file.with_suffix(".tmp")
            # A moment ahead, so that every Locust process knows the window before it opens.
            partial.write_text(json.dumps({"start": time.time() + OPEN_LEAD_S}))
            partial.replace(self.open_file)  # the plugin never reads half a file
            self.done = True


def _confine(proc: subprocess.Popen[bytes], cpus: tuple[int, ...]) -> None:
    """Pin Locust to its CPUs at once: before it has imported anything, so every worker it forks inherits them."""
    try:
        os.sched_setaffinity(proc.pid, cpus)
    except OSError as exc:
        raise LoadError(f"cannot pin Locust to CPUs {list(cpus)}: {exc.strerror or exc}") from exc


def _read_window(path: Path) -> tuple[float, float | None] | None:
    """The measured window's (start, end) wall-clock times the plugin wrote, or None before it did."""
    try:
        doc = json.loads(path.read_text())
        return float(doc["start"]), None if doc.get("end") is None else float(doc["end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not written yet (or half written)


def _until_next(window: tuple[float, float | None] | None, measuring: bool, closed: bool) -> float:
    """How long to sleep: 0.2 s, or less when a window bound comes sooner (callbacks run on time)."""
    if window is None:
        return 0.05
    bound = window[0] if not measuring else (None if closed else window[1])
    if bound is None:
        return 0.2
    return min(0.2, max(0.0, bound - time.time()))


_SEEN: dict[int, psutil.Process] = {}


def _cpu(ps: psutil.Process) -> float | None:
    """CPU % of one core of the busiest Locust process (the master or one of its workers) since the last call."""
    try:
        procs = [ps, *ps.children(recursive=True)]
    except psutil.Error:
        return None
    values = []
    for proc in procs:
        known = _SEEN.setdefault(proc.pid, proc)  # cpu_percent needs the same object for its baseline
        try:
            values.append(float(known.cpu_percent(None)))
        except psutil.Error:
            _SEEN.pop(proc.pid, None)
    return max(values) if values else None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop Locust and everything it started: TERM, then KILL the whole session."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the session (distributed workers)
