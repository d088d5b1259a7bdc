"""How `farm run`, `farm refine` and `farm status --watch` follow a sweep: cells as they finish, failures at once.

In a terminal, a live bar (done/total, elapsed, ETA, the running cells); a failed cell's one-line error is printed
above it when the cell fails. Piped or in CI, one line per finished cell, and a line per failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column
from sqlalchemy import select

from farm.commands.views import cell_label, failure_line, finished, flagged_line
from farm.durations import format_duration
from farm.life import ENDED, CellStatus
from farm.status import LOAD_COLUMNS, flagged_cell
from farm.store.models import CellRow


@dataclass(frozen=True)
class FinishedCell:
    """A cell that has ended, with its error if it failed."""

    id: str
    params: dict[str, Any]
    status: str
    stage: str | None
    category: str | None
    message: str | None
    finished_at: datetime
    warnings: tuple[str, ...] = ()  # the stack's metrics that broke the contract (the cell is kept)
    load: dict[str, Any] | None = None  # unfinished requests, stalled users, late starts, Little's law

    def flagged(self, keys: list[str]) -> Any:
        """The line that says its load did not hold (stalled users, …), or None."""
        return flagged_line({"id": self.id, "params": self.params, **(self.load or {})}, keys)

    def failure(self) -> dict[str, Any]:
        """The cell as `Status.failed` lists a failure."""
        return {"id": self.id, "params": self.params, "stage": self.stage, "category": self.category,
                "message": self.message}


def ended_cells(store: Any, sweep_id: int, limit: int | None) -> list[FinishedCell]:
    """A sweep's ended cells, the latest first (at most ``limit``)."""
    query = (select(CellRow.id, CellRow.params, CellRow.status, CellRow.error_stage, CellRow.error_category,
                    CellRow.error_message, CellRow.finished_at, CellRow.warnings,
                    *(getattr(CellRow, c) for c in LOAD_COLUMNS))
             .where(CellRow.sweep_id == sweep_id, CellRow.status.in_(ENDED), CellRow.finished_at.is_not(None))
             .order_by(CellRow.finished_at.desc()).limit(limit))
    with store.session() as s:
        return [FinishedCell(str(i), dict(p), str(st), stage, cat, msg, at, tuple(w or ()),
                             dict(zip(LOAD_COLUMNS, load, strict=True)))
                for i, p, st, stage, cat, msg, at, w, *load in s.execute(query)]


def flagged_cells(store: Any, sweep_id: int) -> list[dict[str, Any]]:
    """A sweep's done cells whose users stalled, whose starts fell behind, or whose load broke Little's law."""
    query = (select(CellRow.id, CellRow.params, *(getattr(CellRow, c) for c in LOAD_COLUMNS))
             .where(CellRow.sweep_id == sweep_id, CellRow.status == CellStatus.DONE,
                    CellRow.load_stalled.is_(True) | CellRow.load_mismatch.is_(True))
             .order_by(CellRow.position).limit(20))
    with store.session() as s:
        return [flagged_cell(str(i), dict(p), load) for i, p, *load in s.execute(query)]


class EndedFeed:
    """The cells of a sweep that ended since the last look (a cell run again after a resume counts again)."""

    def __init__(self, store: Any, sweep_id: int) -> None:
        self.store, self.sweep_id = store, sweep_id
        self.seen = {(c.id, c.finished_at) for c in ended_cells(store, sweep_id, None)}

    def new(self) -> list[FinishedCell]:
        """Cells that ended since the previous call, in the order they ended."""
        fresh = [c for c in reversed(ended_cells(self.store, self.sweep_id, 500)) if (c.id, c.finished_at)
                 not in self.seen]
        self.seen.update((c.id, c.finished_at) for c in fresh)
        return fresh


class Warnings:
    """Each distinct warning of a run once: the same broken metrics field warns in every cell otherwise."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def new(self, ended: list[FinishedCell]) -> list[str]:
        """The warnings of these cells not shown before, as lines to print."""
        lines = []
        for cell in ended:
            for text in cell.warnings:
                if text not in self.seen:
                    self.seen.add(text)
                    lines.append(f"warning (cell kept): {text}")
        return lines


class Display(Protocol):
    """Where the progress of a sweep goes; a context manager around the watch."""

    def __enter__(self) -> Display: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def update(self, st: Any, ended: list[FinishedCell]) -> None:
        """Show a fresh `Status` and the cells that ended since the previous update."""


def display_for(console: Console, keys: list[str]) -> Display:
    """A live bar in a terminal, lines otherwise."""
    return BarDisplay(console, keys) if console.is_terminal else LineDisplay(console, keys)


def running_label(st: Any, keys: list[str]) -> str:
    """The cells running now, each named by the parameters that vary in the sweep."""
    return "; ".join(sorted(cell_label(r["params"], keys) for r in st.running)) or "–"


def eta_text(st: Any) -> str:
    """The sweep's ETA, or a dash before the first cell has ended."""
    return format_duration(st.eta_s) if st.eta_s is not None else "–"


class LineDisplay:
    """Piped or in CI: a line per ended cell with its full label, and a line per failure."""

    def __init__(self, console: Console, keys: list[str]) -> None:
        self.console, self.keys = console, keys
        self.shown = -1
        self.warnings = Warnings()

    def __enter__(self) -> LineDisplay:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def update(self, st: Any, ended: list[FinishedCell]) -> None:
        """Print what ended; a summary line when cells ended unseen (or at the start)."""
        done = finished(st)
        tail = f" · running: {running_label(st, self.keys)} · ETA {eta_text(st)}"
        for n, cell in enumerate(ended, start=max(done - len(ended), 0) + 1):
            self.console.print(f"{min(n, st.total)}/{st.total} {cell.status}: {cell_label(cell.params, self.keys)}"
                               + tail, soft_wrap=True)
            if cell.status == CellStatus.FAILED:
                self.console.print(failure_line(cell.failure(), self.keys), soft_wrap=True)
            elif (flagged := cell.flagged(self.keys)) is not None:
                self.console.print(flagged, soft_wrap=True)
        for line in self.warnings.new(ended):
            self.console.print(line, style="yellow", markup=False, soft_wrap=True)
        if done != self.shown and not ended:
            self.console.print(f"{done}/{st.total} cells finished" + tail, soft_wrap=True)
        self.shown = done


class BarDisplay:
    """In a terminal: a live bar with done/total, elapsed, ETA and the running cells; failures printed above."""

    def __init__(self, console: Console, keys: list[str]) -> None:
        self.keys = keys
        self.progress = Progress(
            BarColumn(), MofNCompleteColumn(), TextColumn("cells ·", markup=False), TimeElapsedColumn(),
            TextColumn("· ETA {task.fields[eta]} · running:", markup=False),
            TextColumn("{task.description}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=console, expand=True)
        self.task: TaskID | None = None
        self.warnings = Warnings()

    def __enter__(self) -> BarDisplay:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.stop()

    def update(self, st: Any, ended: list[FinishedCell]) -> None:
        """Print new failures above the bar, then move the bar."""
        for cell in ended:
            if cell.status == CellStatus.FAILED:
                self.progress.console.print(failure_line(cell.failure(), self.keys), soft_wrap=True)
            elif (flagged := cell.flagged(self.keys)) is not None:
                self.progress.console.print(flagged, soft_wrap=True)
        for line in self.warnings.new(ended):
            self.progress.console.print(line, style="yellow", markup=False, soft_wrap=True)
        description, eta = running_label(st, self.keys), eta_text(st)
        if self.task is None:
            self.task = self.progress.add_task(description, total=st.total, completed=finished(st), eta=eta)
        else:
            self.progress.update(self.task, description=description, total=st.total, completed=finished(st),
                                 eta=eta)
