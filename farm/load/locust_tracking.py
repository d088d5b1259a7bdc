"""Loaded into the Locust subprocess by the farm's plugin (`locust_plugin`): no request vanishes.

Every request is known from its start (both HTTP clients' ``request`` is wrapped): at the window's close (after its
grace), a request that started inside the window and has not finished is counted as a failure of kind
``unfinished``, its elapsed time as its latency (a lower bound: p95, p99 and the error ratio include it). Per user,
the requests it completed in the window are counted and the time it spent in ``wait`` (its think time) within the
window is measured — from the clock, not from the scenario — so that the farm can find stalled users and check
Little's law (`farm.load.omission`). With open-loop pacing, a task that starts after its slot is a late start: its
first request's start and latency are measured from the slot, as wrk2 does (the lateness is dropped at the next
wait, so a task that made no request never lends it to a later one). A user more than one interval behind gives up
the slots in between, and a user still busy at the close never reaches the slots left in the window: each such
*dropped slot* inside the window is counted (``dropped_slots``), load that was due and never offered.
"""

import math
import random
import time

from locust import User
from locust.clients import HttpSession
from locust.contrib.fasthttp import FastHttpSession
from locust.user.task import TaskSet

LATE = "farm_late_s"  # request context key: how far behind its slot the task of this request started (seconds)
UNFINISHED = "unfinished"  # the kind of failure of a request still running at the window's close
_in_flight: dict = {}  # id -> (user, start time, method, name): requests sent and not yet returned
_tallies: dict = {}  # id(user) -> _Tally, this process's users
_dropped: list = []  # (wall time of the first, count, pacing): runs of open-loop slots given up, window unknown yet
# What this process found (and, in the master, what its workers reported); the window is the plugin's.
load: dict = {"window": lambda: None, "late_starts": 0, "unfinished": 0, "users": None, "workers_users": [],
              "workers_unfinished": 0, "workers_late": 0, "dropped": 0, "workers_dropped": 0, "past_s": 0.0,
              "workers_past_s": 0.0}


class UnfinishedRequest(Exception):
    """A request that started inside the window and had not finished when the window closed (its grace included)."""

    def __repr__(self):
        return str(self)  # Locust groups failures by this text: "unfinished: …"


class _Tally:
    """One user's requests completed in the window and its think time within the window."""

    __slots__ = ("completed", "early", "first_seen", "think_s", "waiting_since")

    def __init__(self):
        self.completed = 0
        self.think_s = 0.0
        self.first_seen = time.time()
        self.waiting_since = None
        self.early = []  # ("request", start, None) / ("wait", start, end) seen before the window was known

    def request_done(self, started):
        window = _window()
        if window is None:
            self.early.append(("request", started, None))
        elif window[0] <= started < window[1]:
            self.completed += 1

    def waited(self, started, ended):
        window = _window()
        if window is None:
            self.early.append(("wait", started, ended))
        else:
            self.think_s += max(0.0, min(ended, window[1]) - max(started, window[0]))

    def settle(self):
        """Count what was seen before the window was known, now that it is."""
        early, self.early = self.early, []
        for kind, started, ended in early:
            if kind == "request":
                self.request_done(started)
            else:
                self.waited(started, ended)


def _tally(user):
    found = _tallies.get(id(user))
    if found is None:
        found = _tallies[id(user)] = _Tally()
    return found


def _window():
    return load["window"]()


def running_in_window():
    """Whether a request started inside the window is still running in this process."""
    window = _window()
    return window is not None and any(window[0] <= started < window[1] for _u, started, _m, _n in
                                      list(_in_flight.values()))


def install(window):
    """Know every request from its start (both HTTP clients) and time every user's wait (its think time);
    ``window()`` gives the measured window's (start, end), or None while it is not known."""
    if load.get("installed"):
        return
    load["installed"] = True
    load["window"] = window
    FastHttpSession.request = _tracked(FastHttpSession.request)  # type: ignore[method-assign]
    HttpSession.request = _tracked(HttpSession.request)  # type: ignore[method-assign]
    TaskSet.wait = _timed(TaskSet.wait)  # type: ignore[method-assign]
    User.start = _seen(User.start)  # type: ignore[method-assign]


def _seen(start):
    def seen(self, group):
        _tally(self)  # from its spawn: a user stuck from its first request on is still a user of the window
        return start(self, group)

    return seen


def _tracked(request):
    def tracked(self, method, url, *args, **kwargs):
        user = getattr(self, "user", None)
        late = user.__dict__.pop("_farm_late", 0.0) if user is not None else 0.0
        if late and len(args) < 2:  # the context is passed by name (never positionally, in practice)
            kwargs["context"] = {**(kwargs.get("context") or {}), LATE: late}
        else:
            late = 0.0
        started = time.time() - late  # a late start's latency runs from its slot
        name = kwargs.get("name") or (args[0] if args else None) or getattr(self, "request_name", None) or url
        key = object()
        _in_flight[id(key)] = (user, started, method, name)
        try:
            response = request(self, method, url, *args, **kwargs)
        finally:
            _in_flight.pop(id(key), None)
        if user is not None:
            _tally(user).request_done(started)
        return response

    return tracked


def _timed(wait):
    def timed(self):
        self.user.__dict__.pop("_farm_late", None)  # the task that just ended had its chance to use it
        tally = _tally(self.user)
        started = tally.waiting_since = time.time()
        try:
            return wait(self)
        finally:
            tally.waiting_since = None
            tally.waited(started, time.time())

    return timed


def paced(pacing):
    """A wait_time that starts each user's tasks on a fixed grid, one every ``pacing`` seconds: open-loop load.

    Like Locust's ``constant_pacing`` the wait does not depend on the response time (so the offered rate does
    not follow the system's speed), but the grid is absolute: a late start (a slow answer, a busy generator)
    is made up by starting the next task at once, so the rate holds on average while responses stay below
    ``pacing``; at most one interval is made up (a saturated stack does not earn a burst once it recovers): the
    slots between are dropped, and counted (`dropped_slots`). Each user's phase is drawn at random, so that users
    spawned together do not send together.
    """

    def wait_time(user):
        now = time.monotonic()
        due = getattr(user, "_farm_due", None)
        if due is None:
            due = now + random.uniform(0.0, pacing)
        else:
            slot = due + pacing
            due = slot
            if now > slot:  # the previous task ran past this one's slot: a late start, measured from the slot
                user._farm_late = now - slot
                behind = int((now - slot) // pacing)  # later slots already due: the last one is made up next
                if behind > 1:
                    due = slot + (behind - 1) * pacing
                    _dropped.append((time.time() - (now - slot - pacing), behind - 1, pacing))
        user._farm_due = due
        return max(0.0, due - now)

    return wait_time


def _slots_in(first, count, pacing, window):
    """How many of the slots first + k × pacing (0 <= k < count) lie inside the window."""
    low = max(0, math.ceil((window[0] - first) / pacing))
    high = count if math.isinf(window[1]) else min(count, math.ceil((window[1] - first) / pacing))
    return max(0, high - low)


def _left_behind(user, now, pacing):
    """The run of slots a paced user had not reached at ``now`` (its task still running), as in `_dropped`."""
    due = getattr(user, "_farm_due", None)
    mono = time.monotonic()
    if due is None or mono < due + pacing:
        return None
    return (now - (mono - due - pacing), int((mono - due - pacing) // pacing) + 1, pacing)


def close(environment, record):
    """At the window's close (after its grace), before the users are stopped: count the requests still running
    as unfinished (through ``record``, the runner's statistics listener) and take every user's tally."""
    if load.get("closed"):
        return
    load["closed"] = True
    window = _window()
    if window is None:
        return  # the window never opened: nothing was measured
    now = time.time()
    for _user, started, method, name in list(_in_flight.values()):
        if window[0] <= started < window[1]:
            record(method, name, (now - started) * 1000, 0, exception=UnfinishedRequest(
                f"{UNFINISHED}: no answer when the window closed (its grace included); its latency is the time "
                "it waited"))
            load["unfinished"] += 1
            load["past_s"] += now - window[1]  # its wait after the window: not the window's (Little's law)
    users = []
    runs = list(_dropped)
    pacing = float(getattr(environment.parsed_options, "farm_pacing", 0.0) or 0.0)
    for greenlet in list(environment.runner.user_greenlets):
        user = greenlet.args[0] if greenlet.args else None
        if user is None:
            continue
        behind = _left_behind(user, now, pacing) if pacing > 0 else None
        if behind is not None:
            runs.append(behind)
        tally = _tally(user)
        tally.settle()
        if tally.waiting_since is not None:
            tally.waited(tally.waiting_since, now)
            tally.waiting_since = None
        present = max(0.0, min(now, window[1]) - max(tally.first_seen, window[0]))
        users.append({"completed": tally.completed, "think_s": round(tally.think_s, 4),
                      "present_s": round(present, 4), "cls": type(user).__name__})
    load["users"] = users
    load["dropped"] = sum(_slots_in(first, count, every, window) for first, count, every in runs)
