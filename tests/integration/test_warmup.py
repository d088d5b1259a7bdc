"""Issue 9 item 4: no request sent during the warm-up is counted, with one Locust process or several.

A real Locust (through the farm's LocustRunner) loads a real HTTP server on loopback. The scenario names every
request by its phase, decided by the wall clock when the request is sent, against the window the farm measures:
``warmup`` before it opens, ``measure`` inside it, ``after`` once it has closed. The server counts what it was sent.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from farm.load.runner import LoadRequest, LocustRunner
from farm.load.stability import Settling
from tests.conftest import farm, stray_processes

PHASED = '''
import json
import time

import gevent
from locust import FastHttpUser, constant, events, task

EDGE_S = 0.005  # no request is sent this close to a bound: its name and its start time must agree
_window = {}


@events.init.add_listener
def _where(environment, **_kwargs):
    _window["file"] = environment.parsed_options.farm_stats_out + ".window"


def _bounds():
    if "start" not in _window:
        try:
            with open(_window["file"]) as fh:
                _window.update(json.load(fh))
        except (OSError, ValueError):
            try:  # a warm-up until stable: the farm has said when the window opens, Locust not yet
                with open(_window["file"].replace(".window", ".open")) as fh:
                    return json.load(fh)["start"], None
            except (OSError, ValueError):
                return None
    return _window["start"], _window["end"]


def phase():
    bounds = _bounds()
    if bounds is None:
        return "warmup"  # the window is written when the test starts; before that it is the warm-up
    for bound in bounds:
        if bound is not None and 0 <= bound - time.time() < EDGE_S:
            gevent.sleep(bound - time.time() + 0.001)
    now = time.time()
    start, end = bounds
    return "warmup" if now < start else "measure" if end is None or now < end else "after"


class Phased(FastHttpUser):
    wait_time = constant(0.005)

    @task
    def call(self):
        name = phase()
        self.client.get("/" + name, name=name)
'''


class Counting(BaseHTTPRequestHandler):
    """Answers 200 at once and counts requests by path."""

    protocol_version = "HTTP/1.1"
    counts: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            self.counts[self.path.strip("/")] += 1
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[tuple[str, Counter[str]]]:
    """A counting HTTP server on loopback, for one test."""
    Counting.counts = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Counting.counts
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("processes", [1, 2])
def test_no_request_sent_during_the_warmup_is_counted(processes: int, server: tuple[str, Counter[str]],
                                                      tmp_path: Path) -> None:
    # Given a scenario that names each request by the phase it was sent in, and a 1.5 s warm-up
    url, sent = server
    locustfile = tmp_path / "phased.py"
    locustfile.write_text(PHASED)
    request = LoadRequest(locustfile=locustfile, host=url, users=4, spawn_rate=100, duration_s=2.0,
                          warmup_s=1.5, artefacts=tmp_path / "out", processes=processes)
    calls: dict[str, float] = {}

    def called(bound: str) -> None:
        calls.setdefault(bound, time.time())

    # When the farm runs it with `processes` Locust processes
    result = LocustRunner().run(request, on_measure_start=lambda: called("start"),
                                on_measure_end=lambda: called("end"))

    # Then requests were sent in every phase (the test could catch a leak) ...
    assert sent["warmup"] > 50 and sent["measure"] > 50, sent
    # ... yet only those sent inside the window are counted, every one of them
    counted = {e.name: e.requests for e in result.endpoints}
    assert counted == {"measure": sent["measure"]}, (counted, sent)
    assert result.total.requests == sent["measure"] and result.total.failures == 0
    assert result.excluded_requests is not None and result.excluded_requests >= sent["warmup"]
    # ... over the window that was asked for, and the farm was called back when it opened and closed
    assert result.measured_s == pytest.approx(2.0, abs=0.01)
    assert result.warmup_s == pytest.approx(1.5, abs=0.01)
    assert calls["end"] - calls["start"] == pytest.approx(2.0, abs=0.15)
    assert stray_processes(str(tmp_path)) == []


@pytest.mark.parametrize("processes", [1, 2])
def test_a_warmup_until_stable_ends_once_the_load_settles_and_counts_no_warmup_request(
        processes: int, server: tuple[str, Counter[str]], tmp_path: Path) -> None:
    # Given a warm-up of at most 20 s that ends once the server's request rate has settled
    url, sent = server
    locustfile = tmp_path / "phased.py"
    locustfile.write_text(PHASED)
    request = LoadRequest(locustfile=locustfile, host=url, users=4, spawn_rate=100, duration_s=2.0,
                          warmup_s=20.0, artefacts=tmp_path / "out", processes=processes, until_stable=True)
    settling = Settling(earliest=time.monotonic())

    def settled() -> bool:
        return settling.add(time.monotonic(), sum(sent.values()), None, None)

    # When the farm runs it
    started = time.monotonic()
    result = LocustRunner().run(request, settled=settled)
    took = time.monotonic() - started

    # Then the warm-up ended when the rate had settled (a few seconds), long before its max, and so did the run
    assert 2.5 <= result.warmup_s <= 12.0, result.warmup_s
    assert took < result.warmup_s + 2.0 + 6.0, took
    # And still no request sent during the warm-up is counted, and every one sent in the window is
    assert sent["warmup"] > 50 and sent["measure"] > 50, sent
    assert {e.name: e.requests for e in result.endpoints} == {"measure": sent["measure"]}, sent
    assert result.measured_s == pytest.approx(2.0, abs=0.01)
    assert stray_processes(str(tmp_path)) == []


def test_farm_run_with_a_warmup_until_stable_ends_it_early_on_a_real_stack(workdir: Path) -> None:
    # Given the sleepy stack and a warm-up of at most 20 s that ends once its throughput settles
    (workdir / "sweep.yaml").write_text("name: settle\nstack: sleepy\nmatrix: {users: [4], delay_ms: [5]}\n"
                                        "load: {duration: 2s, warmup: {until_stable: true, max: 20s}}\n")
    # When it runs
    result = farm("run", "sweep.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr + result.stdout
    # Then the cell is done, its warm-up lasted a few seconds, not 20, and client and server still agree
    [cell] = json.loads(farm("results", "settle", "--format", "json", cwd=workdir).stdout)
    assert cell["status"] == "done" and cell["requests"] > 50 and cell["request_mismatch"] is False, cell
    with sqlite3.connect(workdir / "farm.db") as conn:
        [(warmup_s, measured_s)] = conn.execute("SELECT warmup_s, measured_s FROM cells").fetchall()
    assert 2.5 <= warmup_s <= 12.0 and measured_s == pytest.approx(2.0, abs=0.01)
