"""Loaded into the Locust subprocess beside the scenario (never imported by farm's own processes).

The measured window is fixed when the test starts: it opens ``--farm-warmup`` seconds later and lasts
``--farm-duration`` seconds. Every process that makes requests (the only one, or each worker of ``--processes``)
counts a request only if it *started* inside the window — by the request's own start time, so a request sent
during the warm-up is never counted, however late it completes or however late a worker reports it. The window
is decided once, by the master (or the only process), and sent to the workers, so all processes share one clock
reading. Its bounds are written at once to ``<stats-out>.window`` (the farm reads the stack's counters at those
instants), and at exit the window's statistics (histograms included) are written as JSON to ``--farm-stats-out``.

With ``--farm-until-stable`` the warm-up (``--farm-warmup`` is then its longest) ends when the farm, having seen
the stack's throughput and hit ratio settle, writes the window's start to ``<stats-out>.open``; until every process
knows the window, recent requests are held and then counted or dropped by the same start-time rule.

Locust's own histogram mixes failed requests into response times (a fast 503 pulls the p95 down, a slow timeout
pushes it up). Beside it, every process keeps a histogram of the window's *successful* requests alone, in Locust's
own buckets (``bucket_response_time``); workers send theirs with each report, and the master writes the merged one
as ``total_ok``.

With ``--farm-pacing P`` (open-loop load, ``matrix.rate``) every user class waits with `locust_tracking.paced`:
each user starts a task every P seconds on a fixed grid, whatever the response time, so N users offer N / P tasks
per second. A task that starts after its slot (the previous one ran past it) is a *late start*: its first
request's latency and start are measured from the slot, as wrk2 does, and counted (``late_starts``). Slots the
pacing gave up (a user more than one interval behind, or still busy when the window closed) are counted as
``dropped_slots``: load due in the window and never offered.

No request vanishes (`locust_tracking`): when the runner stops (after the window's grace) a request that started
inside the window and has not finished is counted as a failure of kind ``unfinished``, its elapsed time as its
latency; each process's users' completed requests and measured think time, the unfinished requests and the late
starts go to the master (workers with their last report), and into ``load`` in the statistics.
"""

import json
import time
from collections import deque

import gevent
import locust_tracking as tracking  # beside this file: Locust puts its folder first on sys.path while loading it
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import bucket_response_time

WINDOW_MESSAGE = "farm_window"
GRACE_S = 1.0  # load goes on this long after the window (by default), so that requests started inside it finish
# ... and, with closed-loop users in a process that sends requests, until those started inside the window have
# answered, for at most this much longer (and never longer than the window itself: a request still running a
# window's length after the window closed is unfinished): a slow answer is counted as the answer it is, not as
# unfinished (farm.load.runner adds it to its bounds). Open loop keeps the fixed grace (an answer after it is a
# shortfall of the offered rate).
GRACE_EXTENSION_S = 10.0
PENDING_S = 5.0  # before the window is known, requests are held this long (older ones are surely warm-up)
_state: dict = {"excluded": 0, "excluded_by_workers": 0}
_ok: dict = {}  # this process's successful requests in the window: rounded ms -> count (sent to the master)
_ok_total: dict = {}  # the master's merge of every process's (or the only process's own)
_pending: deque = deque()  # (start time, listener arguments) of requests completed before the window was known


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kwargs):
    parser.add_argument("--farm-warmup", type=float, default=0.0, help="seconds excluded from statistics")
    parser.add_argument("--farm-duration", type=float, default=0.0, help="seconds measured after the warm-up "
                        "(0: until the test stops)")
    parser.add_argument("--farm-stats-out", type=str, default="", help="where to write the final statistics")
    parser.add_argument("--farm-until-stable", action="store_true", default=False,
                        help="the warm-up (at most --farm-warmup) ends when the farm writes <stats-out>.open")
    parser.add_argument("--farm-grace", type=float, default=GRACE_S, help="seconds of load after the window, "
                        "for requests started inside it to finish")
    parser.add_argument("--farm-pacing", type=float, default=0.0, help="open-loop load: every user starts a task "
                        "every this many seconds, whatever the response time (0: the scenario's own wait_time)")


@events.init.add_listener
def _on_init(environment, **_kwargs):
    runner = environment.runner
    _count_only_the_window(environment)
    tracking.install(lambda: _state.get("window"))
    pacing = float(getattr(environment.parsed_options, "farm_pacing", 0.0) or 0.0)
    if pacing > 0:
        for user_class in environment.user_classes:
            user_class.wait_time = tracking.paced(pacing)
    if isinstance(runner, WorkerRunner):
        runner.register_message(WINDOW_MESSAGE, _on_window_message)
        events.report_to_master.add_listener(_report_excluded)
    elif isinstance(runner, MasterRunner):
        events.worker_report.add_listener(_add_excluded)


def _count_only_the_window(environment):
    """Replace the runner's statistics listener by one that drops requests started outside the window."""
    hook = environment.events.request
    originals = [h for h in list(hook._handlers)
                 if getattr(h, "__qualname__", "").endswith("Runner.__init__.<locals>.on_request")]
    if len(originals) != 1:
        raise RuntimeError(f"farm plugin: expected one statistics listener on the request event, found "
                           f"{len(originals)} (Locust version not supported)")
    original = originals[0]
    hook.remove_listener(original)

    def in_window(request_type, name, response_time, response_length, exception=None, start_time=None, **kwargs):
        started = start_time if start_time is not None else time.time() - (response_time or 0) / 1000
        window = _state.get("window")
        if window is None and _state.get("until_stable"):
            # The farm has not said yet when the warm-up ends: hold recent requests until it does.
            _pending.append((started, (request_type, name, response_time, response_length, exception, kwargs)))
            while _pending and _pending[0][0] < time.time() - PENDING_S:
                _pending.popleft()
                _state["excluded"] += 1
            return
        late = (kwargs.get("context") or {}).get(tracking.LATE, 0.0)
        if late:  # a late start: measured from its slot (wrk2's coordinated-omission correction)
            started -= late
            response_time = (response_time or 0) + late * 1000
        if window is None or not window[0] <= started < window[1]:
            _state["excluded"] += 1
            return
        original(request_type, name, response_time, response_length, exception=exception, **kwargs)
        if late:
            tracking.load["late_starts"] += 1
        if exception is None and response_time is not None:
            bucket = bucket_response_time(response_time)
            _ok[bucket] = _ok.get(bucket, 0) + 1

    def replay():
        while _pending:
            started, (request_type, name, response_time, response_length, exception, kwargs) = _pending.popleft()
            in_window(request_type, name, response_time, response_length, exception=exception,
                      start_time=started, **kwargs)

    _state["replay"] = replay
    _state["record"] = original
    _state["until_stable"] = bool(getattr(environment.parsed_options, "farm_until_stable", False))
    hook.add_listener(in_window)


def _on_window_message(environment, msg, **_kwargs):
    _state["window"] = (float(msg.data["start"]), float(msg.data["end"]))
    _state["replay"]()


def _report_excluded(client_id, data, **_kwargs):
    data["farm_excluded"] = _state["excluded"]
    _state["excluded"] = 0
    data["farm_ok"] = dict(_ok)
    _ok.clear()
    data["farm_late"] = tracking.load["late_starts"]
    tracking.load["late_starts"] = 0
    if tracking.load["users"] is not None:  # once, in the report after the window closed
        data["farm_users"], data["farm_unfinished"] = tracking.load["users"], tracking.load["unfinished"]
        data["farm_dropped"], data["farm_past_s"] = tracking.load["dropped"], tracking.load["past_s"]
        tracking.load["users"], tracking.load["unfinished"], tracking.load["dropped"] = None, 0, 0
        tracking.load["past_s"] = 0.0


def _add_excluded(client_id, data, **_kwargs):
    _state["excluded_by_workers"] += int(data.get("farm_excluded", 0))
    tracking.load["workers_late"] += int(data.get("farm_late", 0))
    tracking.load["workers_unfinished"] += int(data.get("farm_unfinished", 0))
    tracking.load["workers_dropped"] += int(data.get("farm_dropped", 0))
    tracking.load["workers_past_s"] += float(data.get("farm_past_s", 0.0))
    tracking.load["workers_users"].extend(data.get("farm_users") or [])
    for bucket, count in (data.get("farm_ok") or {}).items():
        _ok_total[int(bucket)] = _ok_total.get(int(bucket), 0) + int(count)


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    now = time.time()
    _state["test_start"] = now
    longest = now + float(options.farm_warmup or 0.0)
    if getattr(options, "farm_until_stable", False):
        gevent.spawn(_await_stable, environment, longest)
    else:
        _set_window(environment, longest)


def _await_stable(environment, longest):
    """The window opens when the farm writes the time it judged the load settled, or at the longest warm-up."""
    path = environment.parsed_options.farm_stats_out + ".open"
    while True:
        try:
            with open(path) as fh:
                start = float(json.load(fh)["start"])
            break
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if time.time() >= longest:
            start = longest
            break
        gevent.sleep(0.02)
    _set_window(environment, min(start, longest))
    _state["replay"]()


def _set_window(environment, start):
    options = environment.parsed_options
    duration = float(getattr(options, "farm_duration", 0.0) or 0.0)
    end = start + duration if duration > 0 else float("inf")
    _state["window"] = (start, end)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(WINDOW_MESSAGE, {"start": start, "end": end})
    out = getattr(options, "farm_stats_out", "")
    if out:
        # The farm reads the stack's counters at these instants, so both sides count the same window.
        with open(out + ".window", "w") as fh:
            json.dump({"start": start, "end": end if end != float("inf") else None}, fh)
    gevent.spawn_later(max(0.0, start - time.time()), _open_window, environment)
    if end != float("inf"):
        # Stop once the window and its grace have passed. --run-time is only a bound: Locust starts its timer
        # before the test starts, by as much as a busy machine's startup takes, and would cut the window short.
        grace = float(getattr(options, "farm_grace", GRACE_S) or GRACE_S)
        # Open loop keeps the fixed grace: an answer later than its pacing is a shortfall of the offered rate
        extension = 0.0 if float(getattr(options, "farm_pacing", 0.0) or 0.0) > 0 else GRACE_EXTENSION_S
        gevent.spawn(_quit_after_grace, environment, end + grace, end + grace + min(extension, duration))


def _quit_after_grace(environment, at, latest):
    """Quit at ``at``, or later while a request started inside the window is still running here (up to ``latest``:
    what runs then is unfinished). A master sends no request and knows none of its workers': it quits at ``at``."""
    gevent.sleep(max(0.0, at - time.time()))
    while time.time() < latest and tracking.running_in_window():
        gevent.sleep(0.05)
    environment.runner.quit()


def _open_window(environment):
    # Exceptions raised by user code during the warm-up are not the window's.
    environment.runner.exceptions = {}


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_kwargs):
    """The window's close (after its grace), before the users are stopped: count what is still running."""
    if not isinstance(environment.runner, MasterRunner):
        tracking.close(environment, _state["record"])


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs):
    _state.setdefault("stopped", time.time())


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs):
    out = getattr(environment.parsed_options, "farm_stats_out", "")
    if not out or isinstance(environment.runner, WorkerRunner):
        return
    stopped = _state.get("stopped", time.time())
    start, end = _state.get("window", (None, None))
    opened = start is not None and stopped > start
    stats = environment.runner.stats
    ok = dict(_ok_total)
    for bucket, count in _ok.items():  # the only process's own (a master makes no request)
        ok[bucket] = ok.get(bucket, 0) + count
    document = {
        "measured_s": (min(stopped, end) - start) if opened else 0.0,
        "warmup_s": (start - _state["test_start"]) if opened else 0.0,
        "warmup_completed": opened,
        "window": {"start": start, "end": end if end != float("inf") else None},
        "excluded_requests": _state["excluded"] + _state["excluded_by_workers"],
        "stats": [e.serialize() for e in stats.entries.values() if e.num_requests or e.num_failures],
        "total": stats.total.serialize(),
        "total_ok": {"response_times": ok},
        "load": {"users": [*(tracking.load["users"] or []), *tracking.load["workers_users"]],
                 "unfinished_requests": tracking.load["unfinished"] + tracking.load["workers_unfinished"],
                 "late_starts": tracking.load["late_starts"] + tracking.load["workers_late"],
                 "dropped_slots": tracking.load["dropped"] + tracking.load["workers_dropped"],
                 "unfinished_past_window_s": tracking.load["past_s"] + tracking.load["workers_past_s"]},
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
    }
    with open(out, "w") as fh:
        json.dump(document, fh, default=str)
