"""The HTML of `farm serve`: pages made of named sections, each rendered on its own and hashed, so that the live
channel sends a browser only the sections whose HTML changed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import jinja2
from markupsafe import Markup

from farm.commands.views import STATES, cell_label, finished, varying_keys
from farm.durations import format_duration
from farm.status import CellLine, Status, SweepLine
from farm.web.answer import Answer

# The keys of `farm report --format json` that the sweep page shows in its own words; any other key (e.g. the
# switch point's table once was) is shown as it is, so that a new part of the report appears without a change here.
SHOWN_KEYS = frozenset({"sweep", "stack", "metric", "unit", "load", "interval", "max_error_ratio", "comparisons",
                        "per_host", "cache_comparisons", "recommendation", "cost_benefit", "flagged_cells"})
LATEST_CELLS = 50


@dataclass(frozen=True)
class Section:
    """A part of a page that updates on its own: its element id, inner HTML, a hash of it, and its container."""

    id: str
    html: str
    hash: str
    container: str = ""

    def as_event(self) -> dict[str, str]:
        """What the live channel sends for it."""
        return {"html": self.html, "hash": self.hash, "container": self.container}


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    return "–" if seconds is None else format_duration(seconds)


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return list(keys)


_ENV = jinja2.Environment(loader=jinja2.PackageLoader("farm.web", "templates"), autoescape=True,
                          undefined=jinja2.StrictUndefined)
_ENV.globals.update(states=STATES, duration=_duration, number=_number, columns=_columns)
_MACROS: Any = _ENV.get_template("sections.html.j2").module


def section(id: str, html: str, container: str = "") -> Section:
    """A section of the given HTML."""
    return Section(id, html, hashlib.sha1(html.encode()).hexdigest()[:12], container)


def index_sections(lines: list[SweepLine], root: str) -> dict[str, Section]:
    """The sections of the sweeps page."""
    return {"sweeps": section("sweeps", str(_MACROS.sweeps(lines, root)))}


def live_sections(st: Status, spec: Mapping[str, Any], cells: list[CellLine], root: str) -> dict[str, Section]:
    """The sections of a sweep's page read straight from the store: progress, hosts, failures, latest cells."""
    label = partial(_label, keys=varying_keys(dict(spec)))
    return {"progress": section("progress", str(_MACROS.progress(st, finished(st)))),
            "hosts": section("hosts", str(_MACROS.hosts(st, label))),
            "failures": section("failures", str(_MACROS.failures(st, label))),
            "cells": section("cells", str(_MACROS.cells(cells, st.total, st.name, root, label)))}


def answer_sections(answer: Answer | None, current: bool) -> dict[str, Section]:
    """The sections of a sweep's page drawn from its answer: its state, the verdict, the figures, the rest of the
    report's document."""
    found = {"state": section("state", str(_MACROS.state(answer, current, not current))),
             "verdict": section("verdict", str(_MACROS.verdict(answer))), "cost": section("cost", ""),
             "more": section("more", "")}
    if answer is None:
        return found
    for fig in ([answer.difference] if answer.difference else []) + answer.curves:
        found[fig.id] = section(fig.id, str(_MACROS.figure(fig)), "figures")
    found["cost"] = section("cost", str(_MACROS.cost(answer)))
    extra = [(k, v) for k, v in answer.document.items() if k not in SHOWN_KEYS]
    found["more"] = section("more", str(_MACROS.more(extra)))
    return found


def figure_ids(sections: Mapping[str, Section]) -> list[str]:
    """The ids of the figure sections, in order."""
    return [s.id for s in sections.values() if s.container == "figures"]


def page(template: str, sections: Mapping[str, Section], **context: Any) -> str:
    """A whole page, each of its sections in an element the live script updates."""
    def slot(id: str) -> Markup:
        s = sections.get(id) or section(id, "")
        return Markup('<div id="{}" data-section data-hash="{}">').format(s.id, s.hash) + Markup(s.html) + \
            Markup("</div>")

    return _ENV.get_template(template).render(section=slot, **context)


def cells_table(lines: list[CellLine], spec: Mapping[str, Any], name: str, root: str) -> str:
    """The table of every cell of a sweep (not live)."""
    label = partial(_label, keys=varying_keys(dict(spec)))
    return str(_MACROS.cells(lines, len(lines), name, root, label))


def _label(params: Mapping[str, Any], keys: list[str]) -> str:
    return cell_label(dict(params), keys)

