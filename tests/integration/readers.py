"""Plain concurrent clients with no think time, each request bounded by a timeout: a stack that leaves some of
them waiting shows it within that bound, not after a server's own timeout."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any


def concurrent_readers(url: str, clients: int, seconds: float, timeout: float,
                       headers: dict[str, str] | None = None) -> list[Counter[str]]:
    """``clients`` threads GET ``url`` back to back for ``seconds`` (all starting at once): each one's outcomes,
    by HTTP status or exception name."""
    outcomes: list[Counter[str]] = [Counter() for _ in range(clients)]
    start = threading.Barrier(clients)

    def read(mine: Counter[str]) -> None:
        start.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                            timeout=timeout) as resp:
                    resp.read()
                    mine[str(resp.status)] += 1
            except urllib.error.HTTPError as exc:
                mine[str(exc.code)] += 1
            except OSError as exc:  # a timeout, a refused or reset connection
                mine[type(exc).__name__] += 1

    threads = [threading.Thread(target=read, args=(mine,), daemon=True) for mine in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 5)
    return outcomes


def assert_every_user_answered(cell: dict[str, Any]) -> None:
    """A cell run with no think time at several times the stack's concurrency: every user had answers in the
    window, none stuck in a request (Little's law holds: users = throughput × response time), and nothing failed
    but requests still running when the window closed (no 504, no error).

    (Those are not asserted to be none: a request is unfinished once it runs past the window's 1 s grace, and on
    a busy machine a healthy WordPress at 16 users with no think time answers in 1-4 s.)"""
    users = cell["params"]["users"]
    where = {k: cell[k] for k in ("params", "requests", "failures", "rps", "p50_ms", "p99_ms", "unfinished_requests",
                                  "users_active", "users_stalled", "concurrency_ratio")}
    assert cell["status"] == "done" and cell["requests"] > 0, where
    assert (cell["users_active"], cell["users_stalled"]) == (users, 0), where
    assert 0.9 <= cell["concurrency_ratio"] <= 1.1, where
    assert cell["failures"] == cell["unfinished_requests"], where
    assert not cell["load_stalled"] and not cell["load_mismatch"], where
