"""A sweep's progress as `farm sweeps`, `farm status`, `farm run` and `farm serve` show it, read from the store.

One shape for both read paths: the full one (`Store`, SQLAlchemy) and the CLI's fast one (`farm.readonly`,
sqlite3 alone), so this module imports neither: the store's type is for the type checker only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from farm.life import finished

if TYPE_CHECKING:
    from farm.store.repository import Store

NOT_YET_RUN = "(not yet run)"  # the host of cells no worker has taken
# What `farm status` shows of a done cell whose load did not hold.
LOAD_COLUMNS = ("unfinished_requests", "users_stalled", "late_starts", "concurrency_ratio", "load_stalled",
                "load_mismatch")


@dataclass(frozen=True)
class SweepInfo:
    """A sweep and how far it is."""

    id: int
    name: str
    stack: str
    status: str
    created_at: datetime
    counts: dict[str, int]
    new: bool = False

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Status:
    """A sweep's progress: cells by status and host, running cells, failures, an ETA; on the fast read path also
    its stored spec and its done cells whose load did not hold."""

    name: str
    sweep_status: str
    counts: dict[str, int]
    by_host: dict[str, dict[str, int]]
    running: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    eta_s: float | None
    spec: dict[str, Any] = field(default_factory=dict)
    flagged: list[dict[str, Any]] = field(default_factory=list)  # done cells whose load stalled or mismatched

    @property
    def total(self) -> int:
        """Number of cells."""
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """Whether no cell is waiting or running."""
        return finished(self.counts)


@dataclass(frozen=True)
class SweepLine:
    """One sweep of `farm serve`'s index: how far it is, when it should end."""

    info: SweepInfo
    eta_s: float | None


@dataclass(frozen=True)
class CellLine:
    """One cell as `farm serve`'s pages list it."""

    id: str
    params: dict[str, Any]
    repetition: int
    status: str
    host: str | None
    finished_at: datetime | None
    p95_ms: float | None
    rps: float | None
    error: str | None
    artefacts: str | None


@dataclass(frozen=True)
class EndedCell:
    """A cell that has ended, as `farm run` and `farm status --watch` report it: its error if it failed, its
    warnings, and its `LOAD_COLUMNS` (``load``)."""

    id: str
    params: dict[str, Any]
    status: str
    stage: str | None
    category: str | None
    message: str | None
    finished_at: datetime
    warnings: tuple[str, ...] = ()  # the stack's metrics that broke the contract (the cell is kept)
    load: dict[str, Any] | None = None  # unfinished requests, stalled users, late starts, Little's law

    def failure(self) -> dict[str, Any]:
        """The cell as `Status.failed` lists a failure."""
        return failed_cell(self.id, self.params, self.stage, self.category, self.message)

    def flagged(self) -> dict[str, Any]:
        """The cell as `Status.flagged` lists a cell whose load did not hold."""
        return {"id": self.id, "params": self.params, **(self.load or {})}


def by_host(rows: Iterable[tuple[str | None, str, int]]) -> dict[str, dict[str, int]]:
    """Cells counted by host and status, from (host, status, count) rows."""
    hosts: dict[str, dict[str, int]] = {}
    for host, state, n in rows:
        hosts.setdefault(host or NOT_YET_RUN, {})[state] = int(n)
    return hosts


def running_cell(host: str | None, params: dict[str, Any], repetition: int, since: datetime | None) -> dict[str, Any]:
    """A running cell as the views show it."""
    return {"host": host, "params": params, "repetition": repetition, "since": since}


def failed_cell(cell_id: str, params: dict[str, Any], stage: str | None, category: str | None,
                message: str | None) -> dict[str, Any]:
    """A failed cell as the views show it."""
    return {"id": cell_id, "params": params, "stage": stage, "category": category, "message": message}


def flagged_cell(cell_id: str, params: dict[str, Any], load: Iterable[Any]) -> dict[str, Any]:
    """A done cell whose load did not hold, as the views show it (``load``: its `LOAD_COLUMNS`, in order)."""
    return {"id": cell_id, "params": params, **dict(zip(LOAD_COLUMNS, load, strict=True))}


def status(store: Store, name: str) -> Status:
    """Read a sweep's progress from the store (the source of truth)."""
    return store.progress(name)
