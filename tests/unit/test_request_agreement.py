"""The client/server request comparison as a pure function over two readings of the stack's raw metrics."""

from __future__ import annotations

from typing import Any

from farm.load.agreement import compare_requests, window_counts


def docs(**counts: list[int | None]) -> list[dict[str, Any]]:
    """Raw metrics documents as the drivers label them: one per replica of each service."""
    return [{"service": s, "replica": i, **({} if n is None else {"requests": n})}
            for s, ns in counts.items() for i, n in enumerate(ns)]


def test_the_window_count_sums_each_services_replicas_end_minus_start() -> None:
    # Given two readings of two gateways and two catalogs
    before, after = docs(gateway=[10, 20], catalog=[5, 5]), docs(gateway=[110, 220], catalog=[55, 105])
    # Then each service's window count is the sum of its replicas' differences
    assert window_counts(before, after) == {"gateway": 300, "catalog": 150}


def test_a_service_that_does_not_count_or_restarted_is_left_out() -> None:
    # Given a balancer without a count and a pricing replica whose counter went down (it restarted)
    before = docs(balancer=[None], pricing=[50, 50], app=[0])
    after = docs(balancer=[None], pricing=[10, 90], app=[40])
    # Then only the app is counted; with no counting service at all there is no comparison
    assert window_counts(before, after) == {"app": 40}
    assert compare_requests(40, docs(balancer=[None]), docs(balancer=[None]), "balancer") is None


def test_behind_a_balancer_the_front_service_is_compared_not_the_sum() -> None:
    # Given microservices behind nginx: the gateway saw every request, catalog and pricing a part each
    before = docs(gateway=[0, 0], catalog=[0], pricing=[0])
    after = docs(gateway=[500, 500], catalog=[800], pricing=[900])
    # When 1,000 client requests are compared
    agreement = compare_requests(1000, before, after, entry_service="balancer")
    # Then the gateways' 1,000 are compared (not 2,700), and they agree
    assert agreement is not None and agreement.services == ("gateway",) and agreement.server == 1000
    assert agreement.mismatch is False and agreement.as_json()["by_service"]["pricing"] == 900


def test_an_entry_that_counts_is_compared_even_when_a_backend_counts_more() -> None:
    # Given an entry instance that calls a backend twice per request
    agreement = compare_requests(100, docs(app=[0], backend=[0]), docs(app=[100], backend=[200]), "app")
    # Then the entry's own count is compared
    assert agreement is not None and agreement.services == ("app",) and not agreement.mismatch


def test_a_difference_over_one_percent_is_a_mismatch_either_way() -> None:
    # Given the server saw 1% fewer, then 1.1% fewer, then 2% more requests than the client counted
    exact = compare_requests(1000, docs(app=[0]), docs(app=[990]), "app")
    fewer = compare_requests(1000, docs(app=[0]), docs(app=[989]), "app")
    more = compare_requests(1000, docs(app=[0]), docs(app=[1020]), "app")
    # Then 1% is tolerated, beyond it is a mismatch, in both directions
    assert exact is not None and not exact.mismatch
    assert fewer is not None and fewer.mismatch and fewer.difference < 0
    assert more is not None and more.mismatch and more.difference > 0


def test_requests_in_flight_at_the_window_edges_are_allowed_for_and_no_more() -> None:
    # Given a short window of slow responses: 73 counted by the client, ~2.5 in flight at each edge
    # (25 req/s × 100 ms), and the server saw 69 (4 fewer: within the edges) or 64 (9 fewer: beyond them)
    within = compare_requests(73, docs(app=[0]), docs(app=[69]), "app", in_flight=2.5)
    beyond = compare_requests(73, docs(app=[0]), docs(app=[64]), "app", in_flight=2.5)
    # Then the allowance is 1% of 73 (0) plus both edges rounded up (5): 4 fewer agrees, 9 fewer is a mismatch
    assert within is not None and within.allowance == 5 and not within.mismatch
    assert beyond is not None and beyond.mismatch
    assert within.as_json()["in_flight"] == 2.5 and within.as_json()["allowance"] == 5
    # And with nothing in flight the same 4 requests (5.5%) are a mismatch
    strict = compare_requests(73, docs(app=[0]), docs(app=[69]), "app")
    assert strict is not None and strict.mismatch
