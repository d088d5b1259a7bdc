"""Plain concurrent clients with no think time, each request bounded by a timeout: a stack that leaves some of
them waiting shows it within that bound, not after a server's own timeout."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter


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
