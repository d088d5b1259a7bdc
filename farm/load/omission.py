"""No request vanishes: from what the Locust plugin saw, the cell's unfinished requests, stalled users, late starts
and its Little's-law check (closed loop: users = throughput × (response time + think time)).

A user that completed no request in the window while it spent less than the window thinking was stuck in a request
(or in its scenario's code): it stopped offering load, and its missing requests would hide the latency that stopped
it. It counts as stalled only if it was in the window for at least `CYCLES` of the cell's typical time per request
(a user spawned just before the close had no time to complete one). A user that completed requests at less than
`SLOW_SHARE` of the rate of its class's upper quartile (users of one class run one scenario) stalled for part of
the window: Little's law cannot see that (its long request is counted), but its missing requests hide load.

Open loop: a task that starts after its slot is a late start; its latency is already measured from the slot (wrk2),
so late starts flag the cell only beyond `LATE_SHARE` of its requests (more means the users' own backlog, not the
stack, shapes the tail). A slot the pacing gave up (more than one interval behind, or never reached before the
window closed) is load that was due and never offered: any such *dropped slot* flags the cell, and is named in its
warnings. A flag is ``load_stalled``: the figures are lower bounds, and the analysis never lets such a point be the
faster side or meet an SLO. A concurrency ratio outside `RATIO_RANGE` flags ``load_mismatch``: the users' time is not
accounted for by requests and think time (users stuck since before the window, or a scenario that spends its time
elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from farm.load.stats import LoadResult, UserLoad

RATIO_RANGE = (0.9, 1.1)
LATE_SHARE = 0.01  # late starts beyond this share of the requests flag the cell (up to it, p95 cannot move)
# A user is judged only after this many typical request cycles in the window: a healthy user present 3 cycles has
# completed a request unless one took more than twice the typical cycle; one just spawned had no chance to.
CYCLES = 3.0
SLOW_SHARE = 0.25  # a user completing below this share of its class's upper-quartile rate stalled for a while
DROPPED = "open-loop slot"  # the warning that names a cell's dropped slots
SLOW_MIN = 8  # ... judged only where that upper quartile completed this many (below, counts are too noisy)


def cycle_s(users: Sequence[UserLoad]) -> float:
    """The typical user's time per completed request (response + think), the median over users that completed any:
    measured per user, so that hanging requests do not stretch it."""
    times = sorted(u.present_s / u.completed for u in users if u.completed > 0)
    return times[len(times) // 2] if times else 0.0


def is_stalled(user: UserLoad, cycle: float = 0.0) -> bool:
    """No request completed in the window, though the user thought for less than its time in the window, and was
    there for at least `CYCLES` typical cycles (``cycle``, from `cycle_s`)."""
    return user.completed == 0 and user.think_s < user.present_s and user.present_s >= CYCLES * cycle


def slow_users(users: Sequence[UserLoad], cycle: float) -> list[UserLoad]:
    """Users that completed some requests, but at under `SLOW_SHARE` of the rate of their class's upper quartile
    (a partial stall); only users present `CYCLES` cycles, only classes whose upper quartile completed `SLOW_MIN`."""
    found: list[UserLoad] = []
    for cls in {u.cls for u in users}:
        judged = [u for u in users if u.cls == cls and u.present_s > 0 and u.present_s >= CYCLES * cycle]
        if len(judged) < 2:
            continue
        ranked = sorted(judged, key=lambda u: u.completed / u.present_s)
        top = ranked[(3 * len(ranked)) // 4]  # upper quartile: a stall shows while a quarter of the class is well
        if top.completed < SLOW_MIN:
            continue
        rate = top.completed / top.present_s
        found.extend(u for u in judged if u.completed > 0 and u.completed / u.present_s < SLOW_SHARE * rate)
    return found


def concurrency_ratio(users: int, rps: float, mean_ms: float | None, think_s: float, requests: int) -> float | None:
    """Little's law over the window: throughput × (mean response time + mean think time per request) / users."""
    if users <= 0 or requests <= 0 or mean_ms is None:
        return None
    return rps * (mean_ms / 1000.0 + think_s / requests) / users


@dataclass(frozen=True)
class LoadCheck:
    """What a cell stores about requests that did not finish and users that did not offer their load."""

    unfinished_requests: int | None
    users_active: int | None
    users_stalled: int | None
    late_starts: int | None
    concurrency_ratio: float | None
    load_stalled: bool | None
    load_mismatch: bool | None
    warnings: tuple[str, ...] = ()  # what the columns cannot say (dropped open-loop slots), for the cell's warnings

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """The cell columns that store a check (all its fields but ``warnings``, which join the cell's own)."""
        return tuple(f.name for f in fields(cls) if f.name != "warnings")

    def as_extras(self) -> dict[str, Any]:
        """The cell fields of `Store.record_result` (`CELL_EXTRAS`)."""
        return {name: getattr(self, name) for name in self.columns()}


def check_load(result: LoadResult, users: int, open_loop: bool) -> LoadCheck:
    """The cell's check: ``users`` is the number of Locust users it ran; Little's law only in closed loop."""
    if result.users is None:  # not measured (an older plugin's statistics)
        return LoadCheck(result.unfinished_requests, None, None, result.late_starts, None, None, None)
    cycle = cycle_s(result.users)
    slow = slow_users(result.users, cycle)
    stalled = sum(1 for u in result.users if is_stalled(u, cycle)) + len(slow)
    # active: offered its load (completed requests, and not a partial stall): active + stalled never exceed users
    active = sum(1 for u in result.users if u.completed > 0) - len(slow)
    late = result.late_starts or 0
    dropped = result.dropped_slots or 0
    behind = dropped > 0 or late > LATE_SHARE * result.total.requests
    warnings = (f"{dropped} {DROPPED}{_s(dropped)} dropped: load due in the window and never offered (users "
                "more than one interval behind their schedule, or stuck at the close)",) if dropped else ()
    ratio = None
    if not open_loop:
        total = result.total
        mean_ms = total.mean_ms
        if mean_ms is not None and total.requests > 0:  # an unfinished request's wait after the window is not its
            mean_ms -= 1000.0 * result.unfinished_past_window_s / total.requests  # users' time in the window
        ratio = concurrency_ratio(users, total.rps, mean_ms, sum(u.think_s for u in result.users), total.requests)
    mismatch = None if ratio is None else not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]
    return LoadCheck(result.unfinished_requests, active, stalled, late, ratio, stalled > 0 or behind, mismatch,
                     warnings)


def load_flags(record: Mapping[str, Any]) -> list[str]:
    """What a cell record (`farm results --format json`) is flagged with, in words: stalled users, late starts,
    dropped open-loop slots, unfinished requests, and a Little's-law mismatch with both figures (users, and
    throughput × (R + Z))."""
    found = []
    if record.get("users_stalled"):
        found.append(f"{record['users_stalled']} user{_s(record['users_stalled'])} stalled")
    if record.get("late_starts"):
        found.append(f"{record['late_starts']} late start{_s(record['late_starts'])}")
    found += [w.split(":")[0] for w in record.get("warnings") or () if isinstance(w, str) and DROPPED in w]
    if record.get("unfinished_requests"):
        found.append(f"{record['unfinished_requests']} unfinished request{_s(record['unfinished_requests'])}")
    users = (record.get("params") or {}).get("users")
    ratio = record.get("concurrency_ratio")
    if record.get("load_mismatch") and ratio is not None and isinstance(users, int | float):
        found.append(f"Little's law: {users:g} users, {ratio * users:.1f} from throughput × (response + think time)")
    return found


def _s(n: int) -> str:
    return "" if n == 1 else "s"
