"""What `farm sweeps`, `farm status` and the progress of `farm run` print, from facts the store or the fast read
path gives; Rich only, so that the fast path can print exactly what the full commands print."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from farm.durations import format_duration
from farm.life import CELL_STATES, CellStatus, cells_left
from farm.status import Status, SweepInfo
from farm.stored_spec import stored_spec

# An imported sweep has no matrix; its cells are told apart by these.
DEFAULT_KEYS = ("architecture", "cache", "instances", "users")
STATES = CELL_STATES


def varying_keys(spec: Mapping[str, Any]) -> list[str]:
    """The matrix parameters with more than one value in this stored sweep spec: the ones that tell its cells
    apart."""
    matrix = stored_spec(spec).matrix
    if matrix is None:
        return list(DEFAULT_KEYS)
    keys = [k for k, values in matrix.items() if isinstance(values, list) and len(values) > 1]
    return keys or ["users"]


def cell_label(params: dict[str, Any], keys: Iterable[str]) -> str:
    """A cell named by the parameters that vary in its sweep, e.g. ``architecture=monolith, delay_ms=50, users=4``."""
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)


def sweeps_table(sweeps: Iterable[SweepInfo]) -> Table:
    """Every sweep with its progress."""
    table = Table("name", "stack", "status", "cells", CellStatus.DONE, CellStatus.FAILED, "created")
    for s in sweeps:
        table.add_row(s.name, s.stack, s.status, str(s.total), str(s.counts.get(CellStatus.DONE, 0)),
                      str(s.counts.get(CellStatus.FAILED, 0)), s.created_at.strftime("%Y-%m-%d %H:%M"))
    return table


def finished(st: Status) -> int:
    """How many cells of a sweep no longer wait or run."""
    return st.total - cells_left(st.counts)


def status_table(st: Status, keys: Iterable[str]) -> Table:
    """Cells by status and host, and what each host runs now, titled with the sweep's progress and ETA."""
    keys = list(keys)
    eta = format_duration(st.eta_s) if st.eta_s is not None else "–"
    table = Table(title=f"{st.name}: {st.sweep_status} · {finished(st)}/{st.total} cells · ETA {eta}",
                  title_justify="left")
    for column in ("host", *STATES, "running now"):
        table.add_column(column)
    for host, counts in sorted(st.by_host.items()):
        now = "; ".join(sorted(cell_label(r["params"], keys) for r in st.running if r["host"] == host)) or "–"
        table.add_row(host, *(str(counts.get(s, 0)) for s in STATES), now)
    return table


def failure_line(failure: dict[str, Any], keys: Iterable[str]) -> Text:
    """One failed cell: ``failed ID (label): stage/category: message``."""
    return Text.assemble((CellStatus.FAILED, "red"), f" {failure['id']} ({cell_label(failure['params'], keys)}): "
                                            f"{failure['stage']}/{failure['category']}: {failure['message']}")


def flagged_line(record: dict[str, Any], keys: Iterable[str]) -> Text | None:
    """One done cell whose load did not hold (stalled users, late starts, unfinished requests, Little's law), or
    None when nothing is flagged: ``flagged ID (label): 2 users stalled, 4 unfinished requests``."""
    from farm.load.omission import load_flags

    found = load_flags(record) if record.get("load_stalled") or record.get("load_mismatch") else []
    if not found:
        return None
    note = "; its latency is a lower bound, never the faster side" if record.get("load_stalled") else ""
    return Text.assemble(("flagged", "yellow"), f" {record['id']} ({cell_label(record['params'], keys)}): "
                                               f"{', '.join(found)}{note}")


def flagged_lines(flagged: Iterable[dict[str, Any]], keys: Iterable[str]) -> list[Text]:
    """Done cells whose load did not hold, one line each (as `flagged_line`)."""
    keys = list(keys)
    return [line for record in flagged if (line := flagged_line(record, keys)) is not None]


def failure_lines(failed: Iterable[dict[str, Any]], keys: Iterable[str], skip: Collection[str] = ()) -> list[Text]:
    """Failed cells (as `Status.failed` lists them) in a stable order, but those whose id is in ``skip``."""
    keys = list(keys)
    return [failure_line(f, keys) for f in sorted(failed, key=lambda f: str(f["id"])) if f["id"] not in skip]
