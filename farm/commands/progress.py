"""How `farm run`, `farm refine` and `farm status --watch` follow a sweep: cells as they finish, failures at once.

In a terminal, a live bar (done/total, elapsed, ETA, the running cells); a failed cell's one-line error is printed
above it when the cell fails. Piped or in CI, one line per finished cell, and a line per failure.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from farm.commands.views import cell_label, failure_line, finished, flagged_line
from farm.durations import format_duration
from farm.life import CellStatus
from farm.status import EndedCell
from farm.store.views import ended_cells


class EndedFeed:
    """The cells of a sweep that ended since the last look (a cell run again after a resume counts again)."""

    def __init__(self, store: Any, sweep_id: int) -> None:
        self.store, self.sweep_id = store, sweep_id
        self.seen = {(c.id, c.finished_at) for c in ended_cells(store, sweep_id, None)}

    def new(self) -> list[EndedCell]:
        """Cells that ended since the previous call, in the order they ended."""
        fresh = [c for c in reversed(ended_cells(self.store, self.sweep_id, 500)) if (c.id, c.finished_at)
                 not in self.seen]
        self.seen.update((c.id, c.finished_at) for c in fresh)
        return fresh


class Warnings:
    """Each distinct warning of a run once: the same broken metrics field warns in every cell otherwise."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def new(self, ended: list[EndedCell]) -> list[str]:
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

    def update(self, st: Any, ended: list[EndedCell]) -> None:
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

    def update(self, st: Any, ended: list[EndedCell]) -> None:
        """Print what ended; a summary line when cells ended unseen (or at the start)."""
        done = finished(st)
        tail = f" · running: {running_label(st, self.keys)} · ETA {eta_text(st)}"
        for n, cell in enumerate(ended, start=max(done - len(ended), 0) + 1):
            self.console.print(f"{min(n, st.total)}/{st.total} {cell.status}: {cell_label(cell.params, self.keys)}"
                               + tail, soft_wrap=True)
            if cell.status == CellStatus.FAILED:
                self.console.print(failure_line(cell.failure(), self.keys), soft_wrap=True)
            elif (flagged := flagged_line(cell.flagged(), self.keys)) is not None:
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

    def update(self, st: Any, ended: list[EndedCell]) -> None:
        """Print new failures above the bar, then move the bar."""
        for cell in ended:
            if cell.status == CellStatus.FAILED:
                self.progress.console.print(failure_line(cell.failure(), self.keys), soft_wrap=True)
            elif (flagged := flagged_line(cell.flagged(), self.keys)) is not None:
                self.progress.console.print(flagged, soft_wrap=True)
        for line in self.warnings.new(ended):
            self.progress.console.print(line, style="yellow", markup=False, soft_wrap=True)
        description, eta = running_label(st, self.keys), eta_text(st)
        if self.task is None:
            self.task = self.progress.add_task(description, total=st.total, completed=finished(st), eta=eta)
        else:
            self.progress.update(self.task, description=description, total=st.total, completed=finished(st),
                                 eta=eta)
