"""A sweep's, a group's and a cell's life: the states each goes through, as the store keeps them.

A sweep is stored with its groups and cells pending. A group is queued when handed to the broker, claimed by
one worker host (running, under a lease it renews), counts one attempt each time its execution starts, and is
released when its task ends: its status then follows its cells (`group_status_after`). A group whose lease ran
out is handed back as queued by the reaper, or given up (failed) once its attempts are used up. A cell runs,
then is done, skipped (its load could not be offered), failed or cancelled; a reopened sweep makes its failed
and cancelled cells pending again. The rules of each step (`claimable`, `may_attempt`, `released`,
`after_expiry`, `sut_free`) are pure functions here; the store's leases (`farm.store.leases`) apply them. The
enums' values are the strings the database holds (no migration: a `StrEnum` is its value), so rows read back
compare equal to them.

Standard library only: the CLI's fast read path (`farm.readonly`) imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class CellStatus(StrEnum):
    """Where a cell is in its life."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"


class GroupStatus(StrEnum):
    """Where a cell group is in its life (`running` holds a lease, live or expired)."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SweepStatus(StrEnum):
    """Where a sweep is in its life (`missing`: no sweep of that name, as `Store.sweep_status` answers)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    MISSING = "missing"


# A cell that needs no more work, and one that a run (or a reopened sweep) still has to run.
FINISHED = (CellStatus.DONE, CellStatus.SKIPPED)
UNFINISHED = (CellStatus.PENDING, CellStatus.RUNNING, CellStatus.FAILED, CellStatus.CANCELLED)
# A cell still waiting or running: a sweep with one is not finished.
ACTIVE = (CellStatus.PENDING, CellStatus.RUNNING)
# A cell whose run has ended, one way or another.
ENDED = (CellStatus.DONE, CellStatus.FAILED, CellStatus.SKIPPED, CellStatus.CANCELLED)
# Every cell status, in the order the views show them.
CELL_STATES = (CellStatus.PENDING, CellStatus.RUNNING, CellStatus.DONE, CellStatus.FAILED, CellStatus.SKIPPED,
               CellStatus.CANCELLED)
# A group nobody holds yet: claimable, and cancelled with its sweep.
WAITING = (GroupStatus.PENDING, GroupStatus.QUEUED)
# A sweep that must not be settled, searched further or run on.
STOPPED = (SweepStatus.CANCELLED, SweepStatus.INTERRUPTED)


def group_status_after(cell_statuses: Iterable[str]) -> GroupStatus:
    """A released group's status, from its cells': `running` (to be reaped and run again) while work is left."""
    statuses = set(cell_statuses)
    if statuses <= set(FINISHED):
        return GroupStatus.DONE
    if CellStatus.CANCELLED in statuses and not statuses & set(ACTIVE):
        return GroupStatus.CANCELLED
    if statuses <= {*FINISHED, CellStatus.FAILED}:
        return GroupStatus.FAILED
    return GroupStatus.RUNNING


# The rules of a group's lease and attempts. The store applies them in single atomic statements (two workers may
# race for one group), so each is also written there as SQL: tests/unit/test_life.py checks both agree.
def claimable(status: str, lease_until: datetime | None, now: datetime) -> bool:
    """Who may claim a group: anyone, while nobody holds it (pending or queued) or its holder's lease has run out
    (running, expired); never while a live lease holds it, nor once it has ended."""
    return status in WAITING or (status == GroupStatus.RUNNING and lease_until is not None and lease_until < now)


def may_attempt(attempts: int, max_attempts: int) -> bool:
    """Whether the holder of a group may start one more attempt (each start of its execution counts one)."""
    return attempts < max_attempts


@dataclass(frozen=True)
class Release:
    """What releasing a group sets: its status, and its lease's end."""

    status: GroupStatus
    lease_until: datetime | None


def released(cell_statuses: Iterable[str], now: datetime) -> Release:
    """What a release does: the group's status follows its cells (`group_status_after`); one with work left stays
    running under a lease already expired, so that the reaper hands it back at once (within its attempts)."""
    status = group_status_after(cell_statuses)
    return Release(status, now - timedelta(seconds=1) if status == GroupStatus.RUNNING else None)


def after_expiry(attempts: int, max_attempts: int) -> GroupStatus:
    """What the reaper makes of a running group whose lease ran out: queued again while an attempt is left, else
    given up (failed: its unfinished cells fail with `given_up_message`)."""
    return GroupStatus.QUEUED if may_attempt(attempts, max_attempts) else GroupStatus.FAILED


def given_up_message(attempts: int, last_error: str | None) -> str:
    """The error of a given-up group's unfinished cells: its attempts, and the last attempt's error."""
    last = last_error or "its worker stopped before finishing it each time (killed, lost or crashed)"
    return f"gave up after {attempts} attempt(s): {last}"


def sut_free(lease_until: datetime | None, now: datetime) -> bool:
    """Whether a SUT host may be leased: never leased, released, or its lease has run out."""
    return lease_until is None or lease_until < now


def settled_status(counts: Mapping[str, int]) -> SweepStatus | None:
    """A sweep's final status from its cells counted by status; None while a cell waits or runs."""
    if any(counts.get(state, 0) for state in ACTIVE):
        return None
    return SweepStatus.FAILED if counts.get(CellStatus.FAILED) else SweepStatus.DONE


def finished(counts: Mapping[str, int]) -> bool:
    """Whether no cell is waiting or running."""
    return sum(counts.get(state, 0) for state in ACTIVE) == 0


def cells_left(counts: Mapping[str, int]) -> int:
    """How many cells are waiting or running."""
    return sum(counts.get(state, 0) for state in ACTIVE)


def eta_s(counts: Mapping[str, int], first_start: datetime | None) -> float | None:
    """Seconds left at the pace since the first finished cell started; None before one finished or after all."""
    done = sum(counts.get(state, 0) for state in (CellStatus.DONE, CellStatus.SKIPPED, CellStatus.FAILED))
    left = cells_left(counts)
    if not (done and left and first_start is not None):
        return None
    first = first_start if first_start.tzinfo else first_start.replace(tzinfo=UTC)
    return (datetime.now(UTC) - first).total_seconds() / done * left
