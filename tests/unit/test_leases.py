"""Leases and bounded attempts on SQLite: a group runs at most max_attempts times, then its cells fail."""

from __future__ import annotations

import time

from farm.stacks.driver import StackMetrics
from farm.store.leases import Leases
from farm.store.repository import Holder, Store
from tests.unit.test_store import loaded, result


def first_group(store: Store) -> str:
    sweep, plan = loaded()
    store.create_or_resume(sweep, plan)
    return plan.groups[0].id


def statuses(store: Store) -> list[tuple[str, str | None]]:
    return [(c.status, c.error_message) for c in store.cells("s")]


def test_a_group_whose_worker_dies_every_time_is_given_up_after_its_attempts(store: Store) -> None:
    group = first_group(store)
    leases = Leases(store, max_attempts=2)
    for attempt in range(2):
        # Given a worker that claims the group, starts it, and dies (its lease runs out)
        assert leases.claim(group, "w1", lease_s=0.05)
        assert leases.begin_attempt(group, "w1")
        time.sleep(0.1)
        # When the reaper runs
        taken, given_up = leases.expired()
        # Then the group is handed back while it has attempts left, and given up after the last one
        assert (taken, given_up) == (([("s", group)], set()) if attempt == 0 else ([], {"s"}))
    failed = [c for c in store.cells("s") if c.group_id == group]
    assert failed and all(c.status == "failed" and c.error_stage == "attempts" for c in failed)
    assert all(c.error_message.startswith("gave up after 2 attempt(s): its worker stopped") for c in failed)
    # And it is never handed out again
    assert not leases.claim(group, "w2", lease_s=5)


def test_the_last_error_of_a_handed_back_group_is_what_its_cells_fail_with(store: Store) -> None:
    group = first_group(store)
    leases = Leases(store, max_attempts=1)
    # Given a group whose only attempt ended with its stack lost (handed back with the reason)
    assert leases.claim(group, "w1", lease_s=30) and leases.begin_attempt(group, "w1")
    assert leases.release(group, "w1", error="the stack stopped answering") == "running"
    # When a worker claims it again (a redelivery) and would start it
    assert leases.claim(group, "w2", lease_s=30)
    # Then no attempt is left: the cells fail with the last error
    assert not leases.begin_attempt(group, "w2")
    mine = [c for c in store.cells("s") if c.group_id == group]
    assert all(c.error_message == "gave up after 1 attempt(s): the stack stopped answering" for c in mine)


def test_a_claimed_group_that_never_started_uses_no_attempt_and_a_resume_restores_them(store: Store) -> None:
    group = first_group(store)
    leases = Leases(store, max_attempts=1)
    # Given a group claimed twice without ever starting (its task was cut short each time)
    for worker in ("w1", "w2"):
        assert leases.claim(group, worker, lease_s=0.01)
        time.sleep(0.05)
    # Then it still has its attempt
    assert leases.begin_attempt(group, "w2")
    # And after it is given up, `farm resume` (reopen) gives its attempts back
    leases.release(group, "w2", error="boom")
    time.sleep(0.01)
    leases.expired()
    assert any(status == "failed" for status, _ in statuses(store))
    assert group in store.reopen("s")
    assert leases.claim(group, "w3", lease_s=30) and leases.begin_attempt(group, "w3")


def test_a_cut_off_workers_late_writes_change_nothing_once_the_group_is_handed_back_or_taken_over(
        store: Store) -> None:
    group = first_group(store)
    leases = Leases(store, max_attempts=3)
    first, second = [c.id for c in store.cells("s") if c.group_id == group]
    # Given w1 running the group's first cell, then cut off from the store until its lease expired
    assert leases.claim(group, "w1", lease_s=0.05)
    w1 = Holder("w1", leases.begin_attempt(group, "w1"))
    store.mark_running(first, {"name": "w1"}, holder=w1)
    time.sleep(0.1)

    def late_writes() -> None:  # what w1 writes as its watchdog stops it and the store answers again
        store.record_result(second, result(10), StackMetrics(None, None, []), holder=w1)
        store.record_failure([first], "load", "cancel", "cancelled by the user", status="cancelled", holder=w1)
        store.record_failure([second], "queued", "cancel", "not run: cancelled", status="pending", holder=w1)
        store.requeue_cancelled(group, w1)
        store.stage(first, "reset", holder=w1)

    # When the reaper hands the group back, and w1 writes late
    assert leases.expired()[0] == [("s", group)]
    late_writes()
    # Then its cells are as the reaper left them
    assert [c.status for c in store.cells("s") if c.id in (first, second)] == ["pending"] * 2
    # When w2 takes it over (its second attempt), fails the second cell and runs the first, and w1 writes late
    assert leases.claim(group, "w2", lease_s=30)
    w2 = Holder("w2", leases.begin_attempt(group, "w2"))
    assert w2.attempt == 2
    store.record_failure([second], "load", "http", "boom", holder=w2)
    store.mark_running(first, {"name": "w2"}, holder=w2)
    late_writes()
    # Then nothing w2 holds changed: no cell cancelled, none measured by w1
    mine = {c.id: c for c in store.cells("s")}
    assert [(mine[i].status, mine[i].host, mine[i].error_message) for i in (first, second)] == [
        ("running", "w2", None), ("failed", None, "boom")]
    assert "reset" not in (mine[first].stage_times or {})
    # And the holder's own writes still land
    store.record_failure([first], "load", "cancel", "cancelled by the user", status="cancelled", holder=w2)
    assert store.record_result(second, result(10), StackMetrics(None, None, []), holder=w2)
    assert [c.status for c in store.cells("s") if c.id in (first, second)] == ["cancelled", "done"]


def test_two_generators_never_hold_the_same_sut_host_and_a_released_or_expired_one_is_free(store: Store) -> None:
    from farm.store.leases import SutLeases

    suts = SutLeases(store)
    # Given two SUT hosts and three groups on different generators
    assert suts.claim(["sutA", "sutB"], "g1", "gen1", lease_s=30) == "sutA"
    assert suts.claim(["sutA", "sutB"], "g2", "gen2", lease_s=30) == "sutB"
    # Then a third group finds none free
    assert suts.claim(["sutA", "sutB"], "g3", "gen3", lease_s=30) is None
    # And a released host, or one whose lease expired (its generator died), is taken next
    suts.release("sutA", "gen1")
    assert suts.claim(["sutA", "sutB"], "g3", "gen3", lease_s=0.05) == "sutA"
    time.sleep(0.1)
    assert not suts.renew("sutB", "gen1", 30)  # not gen1's
    assert suts.claim(["sutA"], "g4", "gen1", lease_s=30) == "sutA"
    assert not suts.renew("sutA", "gen3", 30)  # gen3 lost it when it expired
    assert suts.holder("sutA") is not None and suts.holder("sutA")[0] == "gen1"  # type: ignore[index]


def test_another_attempt_of_the_same_group_takes_a_sut_host_only_once_its_lease_expired(store: Store) -> None:
    from farm.store.leases import SutLeases

    suts = SutLeases(store)
    # Given a SUT host held by attempt 1 of a group, whose worker lost the store (it renews nothing)
    assert suts.claim(["sutA"], "g1", "gen1 attempt 1", lease_s=0.3) == "sutA"
    # When attempt 2 of the same group, on another generator, asks for it while the lease runs
    # Then it waits; once the lease has expired it is its own, and attempt 1 can neither renew nor release it
    assert suts.claim(["sutA"], "g1", "gen2 attempt 2", lease_s=30) is None
    time.sleep(0.4)
    assert suts.claim(["sutA"], "g1", "gen2 attempt 2", lease_s=30) == "sutA"
    assert not suts.renew("sutA", "gen1 attempt 1", 30)
    suts.release("sutA", "gen1 attempt 1")
    assert suts.holder("sutA") is not None and suts.holder("sutA")[0] == "gen2 attempt 2"  # type: ignore[index]
