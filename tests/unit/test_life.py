"""A group's life: the rules of farm.life as pure functions, and the store's leases applying exactly those rules
(the store writes each as one atomic SQL statement, so each state the rule distinguishes is tried on SQLite)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from farm.life import (
    CellStatus,
    GroupStatus,
    Release,
    after_expiry,
    claimable,
    given_up_message,
    may_attempt,
    released,
    sut_free,
)
from farm.store.leases import Leases, SutLeases
from farm.store.models import CellRow, GroupRow, SutLeaseRow, utcnow
from farm.store.repository import Store
from tests.unit.test_store import loaded

NOW = datetime(2026, 1, 1, 12, 0, 0)
# A lease as the rules tell them apart: none, run out, live.
LEASES = {"none": None, "expired": -60.0, "live": 60.0}


def until(offset: float | None, now: datetime) -> datetime | None:
    return None if offset is None else now + timedelta(seconds=offset)


def test_the_rules_as_pure_functions() -> None:
    # A group nobody holds, or whose holder's lease ran out, may be claimed; a live or ended one may not
    assert claimable(GroupStatus.QUEUED, None, NOW) and claimable(GroupStatus.PENDING, NOW, NOW)
    assert claimable(GroupStatus.RUNNING, NOW - timedelta(seconds=1), NOW)
    assert not claimable(GroupStatus.RUNNING, NOW, NOW) and not claimable(GroupStatus.RUNNING, None, NOW)
    assert not claimable(GroupStatus.DONE, None, NOW) and not claimable(GroupStatus.FAILED, None, NOW)
    # Attempts are bounded; the reaper queues a group with one left, and gives up one without
    assert may_attempt(1, 2) and not may_attempt(2, 2)
    assert (after_expiry(1, 2), after_expiry(2, 2)) == (GroupStatus.QUEUED, GroupStatus.FAILED)
    # A release follows the cells: work left keeps it running under an expired lease, else the lease is gone
    assert released([CellStatus.DONE, CellStatus.PENDING], NOW) == Release(GroupStatus.RUNNING,
                                                                             NOW - timedelta(seconds=1))
    assert released([CellStatus.DONE, CellStatus.SKIPPED], NOW) == Release(GroupStatus.DONE, None)
    assert released([CellStatus.DONE, CellStatus.FAILED], NOW) == Release(GroupStatus.FAILED, None)
    assert released([CellStatus.CANCELLED, CellStatus.DONE], NOW) == Release(GroupStatus.CANCELLED, None)
    assert given_up_message(3, None).startswith("gave up after 3 attempt(s): its worker stopped")
    assert sut_free(None, NOW) and sut_free(NOW - timedelta(seconds=1), NOW) and not sut_free(NOW, NOW)


def one_group(store: Store) -> str:
    sweep, plan = loaded()
    store.create_or_resume(sweep, plan)
    return plan.groups[0].id


def set_group(store: Store, group: str, **values: object) -> None:
    with store.session() as s:
        s.execute(update(GroupRow).where(GroupRow.id == group).values(**values))


@pytest.mark.parametrize("status", list(GroupStatus))
@pytest.mark.parametrize("lease", list(LEASES))
def test_the_store_claims_exactly_the_groups_the_rule_calls_claimable(store: Store, status: GroupStatus,
                                                                     lease: str) -> None:
    # Given a group in this status under this lease
    group, now = one_group(store), utcnow()
    set_group(store, group, status=status, host="w0", lease_until=until(LEASES[lease], now))
    # When a worker claims it, Then it gets it exactly when the rule says
    assert Leases(store).claim(group, "w1", lease_s=30) == claimable(status, until(LEASES[lease], now), now)


@pytest.mark.parametrize("attempts", [0, 1, 2, 3])
def test_the_store_starts_an_attempt_exactly_when_the_rule_allows_one(store: Store, attempts: int) -> None:
    group = one_group(store)
    set_group(store, group, status=GroupStatus.RUNNING, host="w1", lease_until=utcnow() + timedelta(seconds=30),
              attempts=attempts)
    assert bool(Leases(store, max_attempts=2).begin_attempt(group, "w1")) == may_attempt(attempts, 2)


@pytest.mark.parametrize("attempts", [1, 2, 3])
def test_the_reaper_does_with_an_expired_group_what_the_rule_says(store: Store, attempts: int) -> None:
    group = one_group(store)
    set_group(store, group, status=GroupStatus.RUNNING, host="w1", lease_until=utcnow() - timedelta(seconds=5),
              attempts=attempts, last_error="lost")
    Leases(store, max_attempts=2).expired()
    with store.session() as s:
        assert s.get(GroupRow, group).status == after_expiry(attempts, 2)  # type: ignore[union-attr]
    if after_expiry(attempts, 2) == GroupStatus.FAILED:
        assert {c.error_message for c in store.cells("s") if c.group_id == group} == {given_up_message(attempts,
                                                                                                         "lost")}


@pytest.mark.parametrize("cells", [(CellStatus.DONE, CellStatus.PENDING), (CellStatus.DONE, CellStatus.SKIPPED),
                                   (CellStatus.DONE, CellStatus.FAILED), (CellStatus.CANCELLED, CellStatus.DONE)])
def test_a_release_sets_what_the_rule_says(store: Store, cells: tuple[CellStatus, CellStatus]) -> None:
    group = one_group(store)
    leases = Leases(store)
    assert leases.claim(group, "w1", lease_s=30)
    with store.session() as s:
        ids = list(s.scalars(select(CellRow.id).where(CellRow.group_id == group).order_by(CellRow.position)))
        for cell, status in zip(ids, cells, strict=True):
            s.execute(update(CellRow).where(CellRow.id == cell).values(status=status))
    before = utcnow()
    rule = released(cells, before)
    assert leases.release(group, "w1") == rule.status
    with store.session() as s:
        lease = s.get(GroupRow, group).lease_until  # type: ignore[union-attr]
    if rule.lease_until is None:
        assert lease is None
    else:  # already run out: the reaper hands it back at once
        assert lease is not None and lease.replace(tzinfo=None) < utcnow().replace(tzinfo=None)


@pytest.mark.parametrize("lease", list(LEASES))
def test_the_store_leases_a_sut_host_exactly_when_the_rule_calls_it_free(store: Store, lease: str) -> None:
    suts, now = SutLeases(store), utcnow()
    assert suts.claim(["sutA"], "g0", "gen0", 30) == "sutA"
    with store.session() as s:
        s.execute(update(SutLeaseRow).where(SutLeaseRow.host == "sutA").values(
            lease_until=until(LEASES[lease], now)))
    assert (suts.claim(["sutA"], "g1", "gen1", 30) == "sutA") == sut_free(until(LEASES[lease], now), now)
