"""Leases on cell groups, renewed by heartbeat, and the bounded attempts of each group.

The store decides who runs a group, never the broker. A group is claimed atomically (pending/queued, or running
with an expired lease); each time its execution starts counts as one attempt (a group claimed but never started,
because its task was cut short, uses none); a worker that cannot renew its lease stops; a reaper
hands expired groups back to the queue. A group that has used up its attempts is not handed out again: its
unfinished cells fail with the last error. Deliveries of the same task twice are therefore harmless, and no
group can loop forever however often its worker dies under it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from farm.errors import StoreError
from farm.life import FINISHED, WAITING, CellStatus, GroupStatus, after_expiry, given_up_message, released
from farm.store.models import CellRow, GroupRow, SutLeaseRow, SweepRow, utcnow
from farm.store.repository import Store, transient_retry

GIVE_UP_STAGE = "attempts"


class Leases:
    """Claims on cell groups for one worker host, with at most ``max_attempts`` executions per group."""

    def __init__(self, store: Store, max_attempts: int = 3) -> None:
        self.store = store
        self.max_attempts = max(1, max_attempts)

    @transient_retry
    def claim(self, group_id: str, host: str, lease_s: float) -> bool:
        """Take a group for ``host`` if the rule `farm.life.claimable` allows it (nobody alive holds it)."""
        now = utcnow()
        with self.store.session() as s:
            # `claimable` as one atomic statement (two workers may race for the group)
            free = (GroupRow.status.in_(WAITING)) | (
                (GroupRow.status == GroupStatus.RUNNING) & (GroupRow.lease_until < now))
            result = s.execute(update(GroupRow).where(GroupRow.id == group_id, free).values(
                status=GroupStatus.RUNNING, host=host, lease_until=now + timedelta(seconds=lease_s)))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @transient_retry
    def begin_attempt(self, group_id: str, host: str) -> int:
        """Count one attempt of a group we hold, as its execution starts, and return its number (from 1); 0 (and
        the group given up, its unfinished cells failed with the last error) when its attempts are used up."""
        with self.store.session() as s:
            mine = (GroupRow.id == group_id) & (GroupRow.host == host) & (GroupRow.status == GroupStatus.RUNNING)
            # `may_attempt` as one atomic statement: the count and its bound in the same update
            result = s.execute(update(GroupRow).where(mine, GroupRow.attempts < self.max_attempts).values(
                attempts=GroupRow.attempts + 1))
            if result.rowcount:  # type: ignore[attr-defined]
                return int(s.scalar(select(GroupRow.attempts).where(GroupRow.id == group_id)) or 1)
            if s.scalar(select(GroupRow.id).where(mine)) is not None:
                self._give_up(s, group_id)
            return 0

    @transient_retry
    def renew(self, group_id: str, host: str, lease_s: float) -> bool:
        """Extend our lease; False when the group is no longer ours (reaped or cancelled)."""
        with self.store.session() as s:
            result = s.execute(update(GroupRow).where(
                GroupRow.id == group_id, GroupRow.host == host, GroupRow.status == GroupStatus.RUNNING).values(
                lease_until=utcnow() + timedelta(seconds=lease_s)))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @transient_retry
    def release(self, group_id: str, host: str, error: str | None = None) -> str:
        """Give the group up when its task ends; its status follows its cells.

        A group left with unfinished cells (its task stopped early, or its stack died under it) keeps status
        running with an expired lease, so that the reaper hands it back to the queue — within its attempts.
        ``error`` is remembered as the group's last error, the one its cells fail with if no attempt is left.
        """
        with self.store.session() as s:
            rule = released(s.scalars(select(CellRow.status).where(CellRow.group_id == group_id)), utcnow())
            values: dict[str, object] = {"status": rule.status, "lease_until": rule.lease_until}
            if error is not None:
                values["last_error"] = error[:2000]
            s.execute(update(GroupRow).where(GroupRow.id == group_id, GroupRow.host == host).values(**values))
            return rule.status

    @transient_retry
    def expired(self) -> tuple[list[tuple[str, str]], set[str]]:
        """Running groups whose lease ran out: (sweep name, group id) of those handed back as queued
        (atomically), and the names of sweeps with a group given up because its attempts were used up."""
        now = utcnow()
        taken: list[tuple[str, str]] = []
        given_up: set[str] = set()
        with self.store.session() as s:
            rows = s.execute(select(GroupRow.id, SweepRow.name, GroupRow.attempts)
                             .join(SweepRow, SweepRow.id == GroupRow.sweep_id)
                             .where(GroupRow.status == GroupStatus.RUNNING, GroupRow.lease_until < now)).all()
            for group_id, sweep_name, attempts in rows:
                if after_expiry(attempts, self.max_attempts) == GroupStatus.FAILED:
                    if self._give_up(s, group_id, expired_before=now):
                        given_up.add(str(sweep_name))
                    continue
                result = s.execute(update(GroupRow).where(GroupRow.id == group_id,
                                                          GroupRow.status == GroupStatus.RUNNING,
                                                          GroupRow.lease_until < now)
                                   .values(status=GroupStatus.QUEUED, host=None, lease_until=None))
                if result.rowcount:  # type: ignore[attr-defined]
                    s.execute(update(CellRow).where(CellRow.group_id == group_id, CellRow.status == CellStatus.RUNNING)
                              .values(status=CellStatus.PENDING))
                    taken.append((str(sweep_name), str(group_id)))
        return taken, given_up

    def _give_up(self, s: Session, group_id: str, expired_before: object | None = None) -> bool:
        """Fail a group's unfinished cells with its last error; False if someone else changed it first."""
        group = s.execute(select(GroupRow.attempts, GroupRow.last_error).where(GroupRow.id == group_id)).first()
        if group is None:
            return False
        condition = [GroupRow.id == group_id, GroupRow.status.in_((*WAITING, GroupStatus.RUNNING))]
        if expired_before is not None:
            condition.append(GroupRow.lease_until < expired_before)
        result = s.execute(update(GroupRow).where(*condition).values(status=GroupStatus.FAILED, host=None,
                                                                             lease_until=None))
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        message = given_up_message(group.attempts, group.last_error)
        s.execute(update(CellRow).where(CellRow.group_id == group_id, CellRow.status.not_in(FINISHED),
                                        CellRow.status != CellStatus.CANCELLED).values(
            status=CellStatus.FAILED, error_stage=GIVE_UP_STAGE, error_category="internal",
            error_message=message[:2000], finished_at=utcnow()))
        return True

    @transient_retry
    def mark_queued(self, group_ids: list[str]) -> None:
        """Groups handed to the broker."""
        with self.store.session() as s:
            s.execute(update(GroupRow).where(GroupRow.id.in_(group_ids), GroupRow.status != GroupStatus.RUNNING)
                      .values(status=GroupStatus.QUEUED))


class SutLeases:
    """Leases on SUT hosts: a running group holds one SUT host, so two generators never load the same one.

    A lease has one owner: one attempt of a group (``owner`` names the worker and the attempt), or a deployment
    started by hand (`farm stack up --sut`, no group). It passes to another only once it has expired, never to
    another attempt of the same group while the first may still be running there.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def _ensure(self, hosts: list[str]) -> None:
        with self.store.session() as s:
            known = set(s.scalars(select(SutLeaseRow.host).where(SutLeaseRow.host.in_(hosts))))
        for host in hosts:
            if host not in known:
                try:
                    with self.store.session() as s:
                        s.add(SutLeaseRow(host=host))
                except StoreError:  # another worker created it first
                    continue

    @transient_retry
    def claim(self, hosts: list[str], group_id: str | None, owner: str, lease_s: float) -> str | None:
        """Take the first free host of ``hosts`` for ``owner`` (free: never leased, released, or expired)."""
        self._ensure(hosts)
        now = utcnow()
        with self.store.session() as s:
            for host in hosts:
                # `farm.life.sut_free` as one atomic statement
                free = or_(SutLeaseRow.lease_until.is_(None), SutLeaseRow.lease_until < now)
                result = s.execute(update(SutLeaseRow).where(SutLeaseRow.host == host, free).values(
                    group_id=group_id, worker=owner, lease_until=now + timedelta(seconds=lease_s)))
                if result.rowcount:  # type: ignore[attr-defined]
                    return host
        return None

    @transient_retry
    def holder(self, host: str) -> tuple[str, object] | None:
        """(owner, lease end) of a SUT host's live lease, or None when it is free."""
        with self.store.session() as s:
            row = s.execute(select(SutLeaseRow.worker, SutLeaseRow.lease_until).where(
                SutLeaseRow.host == host, SutLeaseRow.lease_until >= utcnow())).first()
            return None if row is None else (str(row.worker), row.lease_until)

    @transient_retry
    def renew(self, host: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease on its SUT host; False when it lost it."""
        with self.store.session() as s:
            result = s.execute(update(SutLeaseRow).where(SutLeaseRow.host == host, SutLeaseRow.worker == owner)
                               .values(lease_until=utcnow() + timedelta(seconds=lease_s)))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @transient_retry
    def release(self, host: str, owner: str) -> None:
        """Free the SUT host for the next owner (only if ``owner`` still holds it)."""
        with self.store.session() as s:
            s.execute(update(SutLeaseRow).where(SutLeaseRow.host == host, SutLeaseRow.worker == owner)
                      .values(group_id=None, worker=None, lease_until=None))
