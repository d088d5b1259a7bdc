"""Real Locust, through the farm's LocustRunner and `farm run`: the p95 of successful requests beside the p95 of
all (issue 9 item 8); open-loop load whose offered rate holds while the target keeps up (item 5); generator and
stack on disjoint CPU sets of one host (item 7, the generator's side)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from farm.analysis.records import cell_record
from farm.cpusets import format_cpus, parse_cpus
from farm.load.runner import LoadRequest, LocustRunner
from farm.report.build import report_json
from farm.store.repository import Store
from tests.conftest import FARM, ROOT, stray_processes

pytestmark = pytest.mark.integration

SCENARIO = '''
from locust import FastHttpUser, constant, task


class Caller(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def call(self):
        self.client.get("/")
'''


class SlowFailures(BaseHTTPRequestHandler):
    """Every tenth request fails slowly (503 after 500 ms); the others succeed at once."""

    protocol_version = "HTTP/1.1"
    served: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        with self.lock:
            SlowFailures.served += 1
            failing = SlowFailures.served % 10 == 0
        if failing:
            time.sleep(0.5)
        body = b"no" if failing else b"ok"
        self.send_response(503 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def failing_server() -> Iterator[str]:
    """An HTTP server on loopback whose failures are slow, for one test."""
    SlowFailures.served = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), SlowFailures)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_p95_of_successful_requests_is_kept_apart_from_the_p95_of_all(failing_server: str,
                                                                          tmp_path: Path) -> None:
    # Given a target where one request in ten fails after 500 ms and the rest succeed at once,
    # loaded by a master and two Locust workers (so the successful requests' histograms travel to the master)
    locustfile = tmp_path / "scenario.py"
    locustfile.write_text(SCENARIO)
    request = LoadRequest(locustfile=locustfile, host=failing_server, users=6, spawn_rate=100, duration_s=2.0,
                          warmup_s=1.0, artefacts=tmp_path / "out", processes=2)

    # When the farm runs the load
    total = LocustRunner().run(request).total

    # Then the p95 of all requests is a failure's (~500 ms), while that of successful requests alone is far
    # below it (how far depends on how busy the machine is)
    assert total.requests > 40 and 0.05 < total.error_ratio < 0.15, total
    assert total.p95_ms is not None and total.p95_ms >= 490, total.p95_ms
    assert total.p95_ok_ms is not None and total.p95_ok_ms <= total.p95_ms - 200, total
    # And the successful requests' histogram holds exactly the requests that did not fail
    assert total.histogram_ok is not None
    assert sum(total.histogram_ok.values()) == total.requests - total.failures
    assert stray_processes(str(tmp_path)) == []


# The calibrated stack's monolith answers in 17 + 20 × (requests in flight) ms: it serves at most 50 req/s.
RATE_SWEEP = f"""name: open
stack: {ROOT / "tests" / "stacks" / "calibrated"}
matrix: {{rate: [10, 100]}}
load: {{spawn_rate: 100, duration: 3s, warmup: 1s}}
"""


def _affinities(folder: Path) -> dict[str, set[str]]:
    """The CPU lists the calibrated stack's and Locust's processes started from ``folder`` may run on now."""
    seen: dict[str, set[str]] = {"stack": set(), "locust": set()}
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            cmd, cwd = " ".join(proc.info["cmdline"] or []), proc.info["cwd"] or ""
            if not cwd.startswith(str(folder)):
                continue
            kind = "stack" if "calibrated/app.py" in cmd else "locust" if "locust" in cmd else None
            if kind is not None:
                seen[kind].add(format_cpus(proc.cpu_affinity()))
        except psutil.Error:
            continue
    return seen


def test_open_loop_load_achieves_the_offered_rate_until_the_stack_cannot(tmp_path: Path) -> None:
    # Given a rate sweep of a stack that serves at most 50 req/s, whose own scenario has no think time at all
    (tmp_path / "sweep.yaml").write_text(RATE_SWEEP)

    # When the farm runs it (the stack beside the generator, on this host), watched while it runs
    run = subprocess.Popen([*FARM, "run", "sweep.yaml"], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    seen: dict[str, set[str]] = {"stack": set(), "locust": set()}
    while run.poll() is None:
        now = _affinities(tmp_path)
        if now["locust"]:  # a cell runs
            for kind, cpus in now.items():
                seen[kind] |= cpus
        time.sleep(0.2)
    stdout, stderr = run.communicate()
    assert run.returncode == 0, stderr + stdout
    store = Store(f"sqlite:///{tmp_path / 'farm.db'}")
    cells = {c["params"]["rate"]: c for c in (cell_record(row) for row in store.cells("open"))}

    # Then at 10 req/s offered the arrivals were paced, not closed-loop: 10 req/s achieved, not flagged
    low = cells[10]
    assert low["status"] == "done" and low["offered_rps"] == 10.0, low
    assert low["achieved_rps"] == pytest.approx(10.0, rel=0.05) and low["rate_saturated"] is False, low
    # And at 100 req/s offered the stack fell far short: the cell is done, flagged saturated, a result
    high = cells[100]
    assert high["status"] == "done" and high["achieved_rps"] < 60 and high["rate_saturated"] is True, high
    # And the summary, the report and its JSON say so, in requests/s offered
    assert "saturated: " in stdout and "of 100 req/s" in stdout, stdout
    report = report_json(store, "open")
    assert report["unit"] == "req/s offered" and report["load"] == "rate"
    assert [c["id"] for c in report["flagged_cells"] if c["flag"] == "rate_saturated"] == [high["id"]]

    # And every cell recorded two disjoint, non-empty CPU sets, the host's CPU use over its window, and the
    # stack's processes and Locust's ran on their own set all along
    sets = {c["id"]: c["cpu_sets"] for c in cells.values()}
    if len(os.sched_getaffinity(0)) < 2:
        assert all(s == {"pinned": False, "note": "not pinned: this host offers 1 CPU"} for s in sets.values())
        return
    [recorded] = {json.dumps(s, sort_keys=True) for s in sets.values()}
    chosen = json.loads(recorded)
    generator, stack = parse_cpus(chosen["generator"]), parse_cpus(chosen["stack"])
    assert chosen["pinned"] and generator and stack and not generator & stack, chosen
    assert seen == {"stack": {chosen["stack"]}, "locust": {chosen["generator"]}}, (seen, chosen)
    for cell in cells.values():
        assert 0 <= cell["host_cpu_pct"] <= 100 and 0 <= cell["stack_set_cpu_pct"] <= 100, cell
        assert cell["host_saturated"] is (max(cell["host_cpu_pct"], cell["stack_set_cpu_pct"]) >= 90), cell
    assert stray_processes(str(tmp_path)) == []
