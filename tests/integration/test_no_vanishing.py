"""Issue 20 items 1-3: no request vanishes — unfinished requests, stalled users, late starts, Little's law.

A real Locust (through the farm's LocustRunner, with one process or two) loads a real HTTP server on loopback that
answers ``/ok`` at once, ``/slow`` after `SLOW_S`, and never answers ``/hang``. The scenario's roles are fixed by
user classes: two steady users, one stuck in ``/hang`` from its first request (in the warm-up), and one that turns
to ``/hang`` half a second into the window, so that one request started inside the window never finishes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from farm.load.omission import check_load
from farm.load.runner import GRACE_EXTENSION_S, LoadRequest, LocustRunner
from tests.conftest import stray_processes

pytestmark = pytest.mark.integration

SLOW_S = 0.8
SLOWER_S = 2.5  # longer than the 1 s grace after the window, well within its extension
ROLES = '''
import json
import time

from locust import FastHttpUser, constant, events, task

_window = {}


@events.init.add_listener
def _where(environment, **_kwargs):
    _window["file"] = environment.parsed_options.farm_stats_out + ".window"


def window_open_for():
    """Seconds since the window opened (negative before, None while it is not known)."""
    if "start" not in _window:
        try:
            with open(_window["file"]) as fh:
                _window.update(json.load(fh))
        except (OSError, ValueError):
            return None
    return time.time() - _window["start"]


class Steady(FastHttpUser):
    weight = 1
    wait_time = constant(0.05)

    @task
    def call(self):
        self.client.get("/ok")


class Stuck(FastHttpUser):
    fixed_count = 1
    wait_time = constant(0.05)

    @task
    def call(self):
        self.client.get("/hang")


class TurnsStuck(FastHttpUser):
    fixed_count = 1
    wait_time = constant(0.05)

    @task
    def call(self):
        since = window_open_for()
        self.client.get("/hang" if since is not None and since > 0.5 else "/ok", name="/turns")
'''

PACED = '''
from locust import FastHttpUser, constant, task


class Paced(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self):
        self.client.get("/{path}")
'''


class Hanging(BaseHTTPRequestHandler):
    """``/ok`` at once, ``/slow`` after SLOW_S, ``/hang`` never (until the server shuts down)."""

    protocol_version = "HTTP/1.1"
    closing = threading.Event()

    def do_GET(self) -> None:
        if self.path == "/hang":
            self.closing.wait(60)
            return
        if self.path == "/slow":
            self.closing.wait(SLOW_S)
        if self.path == "/slower":
            self.closing.wait(SLOWER_S)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    """The hanging server on loopback, for one test."""
    Hanging.closing = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hanging)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Hanging.closing.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("processes", [1, 2])
def test_a_request_that_never_answers_is_counted_and_a_stuck_user_is_seen(processes: int, server: str,
                                                                          tmp_path: Path) -> None:
    # Given four users: two steady, one stuck from its first request, one stuck from 0.5 s into the window
    locustfile = tmp_path / "roles.py"
    locustfile.write_text(ROLES)
    # (a warm-up long enough for a busy machine's Locust workers to have spawned every user before it ends: a user
    # spawned inside the window would send its first /hang there, and count as unfinished)
    request = LoadRequest(locustfile=locustfile, host=server, users=4, spawn_rate=100, duration_s=3.0,
                          warmup_s=2.5, artefacts=tmp_path / "out", processes=processes)
    # When the farm runs it
    result = LocustRunner().run(request)
    # Then the request that started inside the window and never answered is one failure of kind unfinished,
    # its latency the time it waited: from ~0.5 s into the 3 s window to the close after the 1 s grace (one
    # process also waits out the grace's extension for it, never longer than the 3 s window; a master knows no
    # worker's requests and does not)
    assert result.unfinished_requests == 1, result
    turns = next(e for e in result.endpoints if e.name == "/turns")
    waited = 3000 + (min(GRACE_EXTENSION_S, 3.0) * 1000 if processes == 1 else 0)
    assert turns.failures == 1 and turns.max_ms is not None and waited <= turns.max_ms <= waited + 1500, turns
    assert result.total.failures == 1 and max(result.total.histogram) >= 3000
    errors = (tmp_path / "out" / "stats.json").read_text()
    assert '"error": "unfinished: no answer when the window closed' in errors
    # And the user stuck since the warm-up made no request in the window (its request is not the window's) ...
    assert "/hang" not in {e.name for e in result.endpoints}
    # ... but it is seen: one stalled user, three active ones (the one that turned stuck completed requests first)
    assert result.users is not None and len(result.users) == 4
    check = check_load(result, 4, open_loop=False)
    assert (check.users_stalled, check.users_active) == (1, 3), result.users
    assert check.load_stalled is True
    # And Little's law does not hold: a quarter of the users' time is in no request of the window
    assert check.concurrency_ratio is not None and check.concurrency_ratio < 0.9 and check.load_mismatch, check
    assert all(u.present_s == pytest.approx(3.0, abs=0.01) for u in result.users), result.users  # all there
    assert stray_processes(str(tmp_path)) == []


def test_healthy_closed_loop_load_satisfies_littles_law_and_stalls_no_user(server: str, tmp_path: Path) -> None:
    # Given four users that call /ok with 50 ms of think time
    locustfile = tmp_path / "steady.py"
    locustfile.write_text(PACED.format(path="ok").replace("constant(0)", "constant(0.05)"))
    request = LoadRequest(locustfile=locustfile, host=server, users=4, spawn_rate=100, duration_s=2.0,
                          warmup_s=1.0, artefacts=tmp_path / "out")
    # When the farm runs them
    result = LocustRunner().run(request)
    check = check_load(result, 4, open_loop=False)
    # Then nothing is unfinished, every user is active, and users = throughput × (response + measured think time)
    assert (check.unfinished_requests, check.users_active, check.users_stalled) == (0, 4, 0), result.users
    assert result.users is not None and all(u.think_s > 0.5 for u in result.users)  # measured, ~2 s × 50/(50+R)
    assert check.concurrency_ratio == pytest.approx(1.0, abs=0.1) and check.load_mismatch is False, check
    assert check.load_stalled is False


def test_a_slow_answer_after_the_grace_is_an_answer_not_an_unfinished_request(server: str, tmp_path: Path) -> None:
    # Given four users whose every request takes 2.5 s (no think time): each starts its last request of the 3 s
    # window in its last 2.5 s, and most of those answer after the window's 1 s grace
    locustfile = tmp_path / "slower.py"
    locustfile.write_text(PACED.format(path="slower"))
    request = LoadRequest(locustfile=locustfile, host=server, users=4, spawn_rate=100, duration_s=3.0,
                          warmup_s=1.0, artefacts=tmp_path / "out")
    # When the farm runs them
    result = LocustRunner().run(request)
    # Then Locust waits for them past the grace: every request of the window is an answer, none unfinished or
    # failed, each with its full 2.5 s (with a fixed grace, most users' last request would be a failure)
    assert (result.unfinished_requests, result.total.failures) == (0, 0), result
    assert result.total.requests >= 4 and result.total.max_ms is not None and result.total.max_ms >= 2500
    check = check_load(result, 4, open_loop=False)
    assert (check.users_active, check.users_stalled) == (4, 0), result.users


@pytest.mark.parametrize(("path", "late"), [("ok", False), ("slow", True)])
def test_open_loop_starts_behind_their_slot_are_late_and_measured_from_the_slot(path: str, late: bool, server: str,
                                                                                tmp_path: Path) -> None:
    # Given users paced at one task every 0.5 s, against an endpoint that answers at once, or after 0.8 s
    locustfile = tmp_path / "paced.py"
    locustfile.write_text(PACED.format(path=path))
    request = LoadRequest(locustfile=locustfile, host=server, users=3, spawn_rate=100, duration_s=2.0,
                          warmup_s=1.0, artefacts=tmp_path / "out", pacing_s=0.5)
    # When the farm runs them
    result = LocustRunner().run(request)
    check = check_load(result, 3, open_loop=True)
    # Then starts are late only when the answer takes longer than the pacing, and the late ones' latency runs from
    # their slot: above the server's 0.8 s (wrk2's correction), where the quick endpoint has no late start
    assert check.concurrency_ratio is None and check.load_mismatch is None
    if late:
        assert check.late_starts is not None and check.late_starts > 0 and check.load_stalled is True, check
        assert result.total.p50_ms is not None and result.total.p50_ms >= 1000, result.total
    else:
        assert check.late_starts == 0 and check.load_stalled is False, check


@pytest.mark.parametrize("processes", [1, 2])
def test_every_open_loop_slot_of_the_window_is_a_request_or_a_dropped_slot(processes: int, server: str,
                                                                          tmp_path: Path) -> None:
    # Given 4 users paced at one task every 0.2 s against /slow (0.8 s): each can start only one task in four
    locustfile = tmp_path / "paced.py"
    locustfile.write_text(PACED.format(path="slow"))
    request = LoadRequest(locustfile=locustfile, host=server, users=4, spawn_rate=100, duration_s=2.0,
                          warmup_s=1.5, artefacts=tmp_path / "out", pacing_s=0.2, processes=processes)
    # When the farm runs them
    result = LocustRunner().run(request)
    check = check_load(result, 4, open_loop=True)
    # Then the slots the pacing gave up are counted, the cell is flagged and says why
    assert result.dropped_slots is not None and result.dropped_slots > 0, result
    assert check.load_stalled is True and check.warnings and "slots dropped" in check.warnings[0], check
    # And every slot of the 2 s window (10 per user) was either offered (a request, counted from its slot) or
    # dropped: none vanished (a slot at the window's very edge may fall either side of it)
    assert result.users is not None and len(result.users) == 4
    assert abs(result.total.requests + result.dropped_slots - 40) <= 4, (result.total.requests, result.dropped_slots)


CARRIES = '''
import gevent
from locust import FastHttpUser, constant, task


class Carries(FastHttpUser):
    wait_time = constant(0)
    calls = 0

    @task
    def call(self):
        self.calls += 1
        if self.calls % 3 == 1:
            gevent.sleep(0.7)  # past the next slot: the next task starts late ...
        elif self.calls % 3 == 0:
            self.client.get("/ok")  # ... makes no request, and this one starts on its slot
'''


def test_a_late_task_without_a_request_lends_its_lateness_to_no_later_request(server: str, tmp_path: Path) -> None:
    # Given paced users (0.5 s) whose every third task runs 0.7 s, so that the next starts late and makes no
    # request, and whose request is made by the task after that, on its slot
    locustfile = tmp_path / "carries.py"
    locustfile.write_text(CARRIES)
    request = LoadRequest(locustfile=locustfile, host=server, users=2, spawn_rate=100, duration_s=3.0,
                          warmup_s=1.0, artefacts=tmp_path / "out", pacing_s=0.5)
    # When the farm runs them
    result = LocustRunner().run(request)
    # Then the requests were made, none of them late: the late task's lateness was not carried to them
    assert result.total.requests >= 2, result.total
    assert result.late_starts == 0 and result.dropped_slots == 0, result
