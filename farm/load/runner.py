"""The LoadRunner port and its implementation: Locust as a headless subprocess."""

from __future__ import annotations

import contextlib
import json
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
from farm.load.stats import LoadResult, parse_locust_stats

PLUGIN = Path(__file__).with_name("locust_plugin.py")


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


class LoadRunner(Protocol):
    """Generates load against a target and returns what it measured."""

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None) -> LoadResult:
        """Run one cell's load to completion (or until ``cancel`` is set).

        ``on_measure_start`` is called once when the warm-up ends and the measured window opens.
        """
        ...


class LocustRunner:
    """Runs Locust as a subprocess in its own session, never imported here (gevent would patch us)."""

    def __init__(self, *, saturation_cpu_pct: float = 90.0, python: str = sys.executable) -> None:
        self.saturation_cpu_pct = saturation_cpu_pct
        self.python = python

    def command(self, request: LoadRequest) -> list[str]:
        """The Locust command line for a request."""
        run_time = round(request.warmup_s + request.duration_s)
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
            "--farm-warmup", str(request.warmup_s), "--farm-stats-out", str(out / "stats.json"),
            *(["--processes", str(request.processes)] if request.processes > 1 else []),
        ]

    def run(self, request: LoadRequest, cancel: threading.Event | None = None,
            on_measure_start: Callable[[], None] | None = None) -> LoadResult:
        """Run Locust, sample its CPU after the warm-up, and parse the statistics it wrote."""
        files.private_dir(request.artefacts)
        _SEEN.clear()
        stats_file = request.artefacts / "stats.json"
        marker = Path(f"{stats_file}.measuring")
        stats_file.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
        limit = request.warmup_s + request.duration_s + 30.0
        with files.open_log(request.artefacts / "locust.out") as out:
            proc = subprocess.Popen(self.command(request), stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=child_environment({"PYTHONUNBUFFERED": "1"}))
            try:
                cpu = self._watch(proc, marker, limit, cancel, on_measure_start)
            except BaseException:
                _stop(proc)
                raise
        if proc.returncode not in (0, 1) or not stats_file.is_file():
            tail = _tail(request.artefacts / "locust.out")
            raise LoadError(f"Locust exited with code {proc.returncode} and no statistics: {tail}")
        result = parse_locust_stats(json.loads(stats_file.read_text()))
        if result.total.requests == 0:
            raise LoadError("Locust made no request in the measured window; see locust.log in the artefacts")
        saturated = cpu is not None and cpu >= self.saturation_cpu_pct
        return LoadResult(endpoints=result.endpoints, total=result.total, measured_s=result.measured_s,
                          warmup_s=result.warmup_s, generator_cpu_pct=cpu, generator_saturated=saturated,
                          artefacts=str(request.artefacts))

    def _watch(self, proc: subprocess.Popen[bytes], marker: Path, limit_s: float,
               cancel: threading.Event | None, on_measure_start: Callable[[], None] | None) -> float | None:
        """Wait for Locust while sampling its CPU share of one core; returns the mean over the measured window."""
        started = time.monotonic()
        samples: list[float] = []
        measuring = False
        last_sample = 0.0
        try:
            ps: psutil.Process | None = psutil.Process(proc.pid)
        except psutil.Error:
            ps = None
        while proc.poll() is None:
            if cancel is not None and cancel.is_set():
                raise CancelledError("load run cancelled")
            time.sleep(0.2)
            if time.monotonic() - started > limit_s:
                raise LoadError(f"Locust did not finish within {limit_s:.0f}s; it was stopped")
            if not measuring and marker.exists():
                measuring = True
                if on_measure_start is not None:
                    on_measure_start()
                if ps is not None:
                    _cpu(ps)  # the next reading covers only the measured window
                    last_sample = time.monotonic()
            elif measuring and ps is not None and time.monotonic() - last_sample >= 1.0:
                value = _cpu(ps)
                last_sample = time.monotonic()
                if value is not None:
                    samples.append(value)
        # The last sample covers Locust's shutdown, not load.
        samples = samples[:-1] if len(samples) > 2 else samples
        return sum(samples) / len(samples) if samples else None


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


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) or "(no output)"
