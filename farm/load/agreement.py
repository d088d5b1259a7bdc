"""Client and server agree: Locust's request count for a cell against the stack's own count over the same window.

A client can hide failures from its own count (e.g. by silently retrying a dropped keep-alive connection), and a
server can miss requests (an error page from the balancer); either shows as a difference between the two counts.

Which server count is compared. A stack's instances report ``requests`` in their metrics document (the stack
contract), but a request that crosses several services is counted once by every service it touches (the shop's
microservices: the gateway, then catalog and pricing). The count that matches the client's is that of the
services that face the load: the entry service itself when it is an instance (it reports its own count), else —
behind a balancer that reports nothing, like the shop's nginx — the instance service with the largest count in
the window. That rule assumes each client request reaches one front instance once and no backend more often
than the front (true of the shop: a product page calls catalog and pricing once each); which services were
compared is stored with the counts, so a reader can check it.

Window edges. The client counts a request by its start time; the server's count is read at the window's two
edges. A request in flight at an edge can fall on different sides for the two (started just before the opening
reading but received after it, or received before the closing reading but started after the window closed), so
a difference up to the number of requests in flight at the two edges is no evidence of anything. By Little's law
that number is throughput × mean response time per edge; the allowance is 1% of the client's count plus twice that
(rounded up). In a long window it is negligible; in a 3 s window of slow responses it is what keeps the check
from crying wolf.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TOLERANCE = 0.01  # a difference above 1% of the client's count is a mismatch


@dataclass(frozen=True)
class RequestAgreement:
    """The client's and the server's request counts over one measured window, and whether they disagree."""

    client: int
    server: int
    services: tuple[str, ...]
    by_service: dict[str, int]
    tolerance: float = TOLERANCE
    in_flight: float = 0.0  # requests in flight at one window edge (throughput × mean response time)

    @property
    def difference(self) -> float:
        """(server − client) / client: positive when the server saw more requests than the client counted."""
        return (self.server - self.client) / self.client if self.client else float(self.server > 0)

    @property
    def allowance(self) -> int:
        """The largest difference (in requests) that is no mismatch: 1% of the client's count plus the edges."""
        return math.floor(self.tolerance * self.client) + math.ceil(2 * self.in_flight)

    @property
    def mismatch(self) -> bool:
        """Whether the counts differ by more than the allowance."""
        return abs(self.server - self.client) > self.allowance

    def as_json(self) -> dict[str, Any]:
        """The stored form (a JSON object)."""
        return {"client": self.client, "server": self.server, "services": list(self.services),
                "by_service": dict(self.by_service), "difference": self.difference, "tolerance": self.tolerance,
                "in_flight": round(self.in_flight, 2), "allowance": self.allowance, "mismatch": self.mismatch}


def window_counts(before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]) -> dict[str, int] | None:
    """Requests each service received between two readings of its instances' raw metrics (summed over replicas).

    A service whose instances do not report ``requests``, or whose counter went down (a restarted instance), is
    left out; None when no service can be counted.
    """
    start = {(doc.get("service"), doc.get("replica")): doc.get("requests") for doc in before}
    counts: dict[str, int] = {}
    broken: set[str] = set()
    for doc in after:
        service = str(doc.get("service"))
        end, begin = _count(doc.get("requests")), _count(start.get((doc.get("service"), doc.get("replica"))))
        if end is None or begin is None or end < begin:
            broken.add(service)
            continue
        counts[service] = counts.get(service, 0) + end - begin
    counts = {s: n for s, n in counts.items() if s not in broken}
    return counts or None


def compare_requests(client: int, before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]],
                     entry_service: str, tolerance: float = TOLERANCE,
                     in_flight: float = 0.0) -> RequestAgreement | None:
    """Compare the client's count with the front services' count over the window; None if the stack counts none.

    ``in_flight``: requests in flight at one window edge (throughput × mean response time, Little's law).
    """
    counts = window_counts(before, after)
    if counts is None:
        return None
    # Ties go to the first name in sorted order, so the choice is the same on every reading.
    front = (entry_service,) if entry_service in counts else (max(sorted(counts), key=lambda s: counts[s]),)
    return RequestAgreement(client=client, server=sum(counts[s] for s in front), services=front,
                            by_service=counts, tolerance=tolerance, in_flight=max(in_flight, 0.0))


def _count(value: Any) -> int | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return int(value) if ok else None
