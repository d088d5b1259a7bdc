"""No request vanishes: from what the Locust plugin saw, the cell's unfinished requests, stalled users, late starts
and its Little's-law check (closed loop: users = throughput × (response time + think time)).

A closed-loop user that completed no request in the window while it spent less than the window thinking was stuck
in a request (or in its scenario's code): it stopped offering load, and its missing requests would hide the
latency that stopped it. An open-loop task that starts after its slot is a late start (its latency is measured
from the slot). Either flags the cell ``load_stalled``: its figures are lower bounds, and the analysis never lets
such a point be the faster side or meet an SLO. A concurrency ratio outside `RATIO_RANGE` flags ``load_mismatch``:
the users' time is not accounted for by requests and think time (users stuck since before the window, or a
scenario that spends its time elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from farm.load.stats import LoadResult, UserLoad

RATIO_RANGE = (0.9, 1.1)


def is_stalled(user: UserLoad) -> bool:
    """No request completed in the window, though the user thought for less than its time in the window."""
    return user.completed == 0 and user.think_s < user.present_s


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

    def as_extras(self) -> dict[str, Any]:
        """The cell fields of `Store.record_result` (`CELL_EXTRAS`)."""
        return {"unfinished_requests": self.unfinished_requests, "users_active": self.users_active,
                "users_stalled": self.users_stalled, "late_starts": self.late_starts,
                "concurrency_ratio": self.concurrency_ratio, "load_stalled": self.load_stalled,
                "load_mismatch": self.load_mismatch}


def check_load(result: LoadResult, users: int, open_loop: bool) -> LoadCheck:
    """The cell's check: ``users`` is the number of Locust users it ran; Little's law only in closed loop."""
    if result.users is None:  # not measured (an older plugin's statistics)
        return LoadCheck(result.unfinished_requests, None, None, result.late_starts, None, None, None)
    stalled = sum(1 for u in result.users if is_stalled(u))
    active = sum(1 for u in result.users if u.completed > 0)
    late = result.late_starts or 0
    ratio = None
    if not open_loop:
        total = result.total
        ratio = concurrency_ratio(users, total.rps, total.mean_ms, sum(u.think_s for u in result.users),
                                  total.requests)
    mismatch = None if ratio is None else not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]
    return LoadCheck(result.unfinished_requests, active, stalled, late, ratio, stalled > 0 or late > 0, mismatch)


def load_flags(record: Mapping[str, Any]) -> list[str]:
    """What a cell record (`farm results --format json`) is flagged with, in words: stalled users, late starts,
    unfinished requests, and a Little's-law mismatch with both figures (users, and throughput × (R + Z))."""
    found = []
    if record.get("users_stalled"):
        found.append(f"{record['users_stalled']} user{_s(record['users_stalled'])} stalled")
    if record.get("late_starts"):
        found.append(f"{record['late_starts']} late start{_s(record['late_starts'])}")
    if record.get("unfinished_requests"):
        found.append(f"{record['unfinished_requests']} unfinished request{_s(record['unfinished_requests'])}")
    users = (record.get("params") or {}).get("users")
    ratio = record.get("concurrency_ratio")
    if record.get("load_mismatch") and ratio is not None and isinstance(users, int | float):
        found.append(f"Little's law: {users:g} users, {ratio * users:.1f} from throughput × (response + think time)")
    return found


def _s(n: int) -> str:
    return "" if n == 1 else "s"
