"""From the store to a report: load a sweep's cells, analyse them, render HTML, Markdown or figure files."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from farm.analysis.answer import Analysis, analyse
from farm.analysis.bootstrap import RESAMPLES, SEED
from farm.analysis.cost import sweep_price
from farm.analysis.frame import cells_frame, histogram_frame
from farm.analysis.records import cell_record
from farm.report.provenance import Provenance
from farm.stored_spec import stored_spec

if TYPE_CHECKING:  # matplotlib only where figures are drawn, SQLAlchemy only where a Store is opened
    from matplotlib.figure import Figure

    from farm.store.repository import Store


class SweepReader(Protocol):
    """What the report reads of a store: `Store`, or `farm.readonly.ReadOnlyStore` (SQLite, no SQLAlchemy)."""

    def sweep(self, name: str) -> Any:
        """The sweep of this name (its ``stack``); NotFoundError if there is none."""
        ...

    def sweep_spec(self, name: str) -> tuple[dict[str, Any], str]:
        """The stored spec, as a model dump and as text."""
        ...

    def cells(self, name: str) -> Sequence[Any]:
        """Every cell with its measurements, in plan order."""
        ...


def analysis_for(store: SweepReader, name: str, *, metric: str = "p95_ms",
                 costs: Mapping[str, float] | None = None) -> tuple[Analysis, Provenance]:
    """The analysis of a stored sweep and its provenance."""
    info = store.sweep(name)
    dump, text = store.sweep_spec(name)
    spec = stored_spec(dump)
    rows = store.cells(name)
    frame = cells_frame((cell_record(c) for c in rows), spec.comparison)
    analysis = analyse(frame, histogram_frame(rows), metric=metric, slo_ms=spec.slo_value(metric),
                       max_error_ratio=spec.slo_value("max_error_ratio", 0.01), costs=costs,
                       search=spec.search, price=sweep_price(dump), load=spec.load)
    hosts: dict[str, dict[str, Any]] = {}
    for c in rows:
        if c.host and c.host_info:
            hosts.setdefault(c.host, dict(c.host_info))
    started = min((c.started_at for c in rows if c.started_at), default=None)
    finished = max((c.finished_at for c in rows if c.finished_at), default=None)
    return analysis, Provenance(name, info.stack, text, hosts, started, finished, spec.slo, metric_warnings(rows))


def metric_warnings(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Each distinct warning the sweep's cells carry (metrics that broke the stack contract), with how many
    cells carry it; the cells themselves are kept."""
    counts: dict[str, int] = {}
    for row in rows:
        for text in row.warnings or ():
            counts[str(text)] = counts.get(str(text), 0) + 1
    return [{"warning": text, "cells": n} for text, n in counts.items()]


def write_report(store: Store, name: str, output: Path, *, fmt: str = "html", metric: str = "p95_ms",
                 costs: Mapping[str, float] | None = None, figures_dir: Path | None = None) -> str:
    """Render the report (html to ``output``; md returned as text) and optionally figure files; returns md/path."""
    from farm.report.html import render_html, render_markdown  # jinja2: not for `farm report --format json`

    analysis, provenance = analysis_for(store, name, metric=metric, costs=costs)
    if figures_dir is not None:
        write_figures(analysis, figures_dir)
    if fmt == "md":
        return render_markdown(analysis, provenance)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(render_html(analysis, provenance))
    tmp.replace(output)
    return str(output)


def report_json(store: SweepReader, name: str, *, metric: str = "p95_ms",
                costs: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The verdicts of a sweep as the document `farm report NAME --format json` prints."""
    analysis, provenance = analysis_for(store, name, metric=metric, costs=costs)
    return report_document(analysis, provenance)


def report_document(analysis: Analysis, provenance: Provenance) -> dict[str, Any]:
    """The document `farm report NAME --format json` prints, from an analysis already made (`farm serve` shows
    it beside the figures drawn from the same analysis)."""
    metric = analysis.metric
    return {"sweep": provenance.name, "stack": provenance.stack, "metric": metric, "unit": analysis.unit,
            "load": analysis.load,
            "interval": {"method": "bootstrap over repetitions, pooled histograms", "resamples": RESAMPLES,
                         "seed": SEED, "level": 0.95},
            "max_error_ratio": analysis.max_error_ratio,
            "comparisons": [v.as_json() for v in analysis.verdicts],
            "per_host": [v.as_json() for v in analysis.host_verdicts],
            "cache_comparisons": [v.as_json() for v in analysis.cache_verdicts],
            "recommendation": analysis.recommendation,
            "cost_benefit": [c.as_json() for c in analysis.cost_benefit],
            "flagged_cells": flagged_cells(analysis), "warnings": provenance.warnings}


def flagged_cells(analysis: Analysis) -> list[dict[str, Any]]:
    """Done cells kept in the answer but flagged: short of their offered rate, on a saturated host, with stalled
    users or late starts (never the faster side), or off Little's law."""
    cells = analysis.cells
    found = []
    for flag in ("rate_saturated", "host_saturated", "load_stalled", "load_mismatch"):
        if flag not in cells.columns:
            continue
        for _, row in cells[cells[flag].astype("boolean").fillna(False).astype(bool)].iterrows():
            found.append({"id": row["id"], "flag": flag, "offered_rps": _value(row.get("offered_rps")),
                          "achieved_rps": _value(row.get("achieved_rps")),
                          "host_cpu_pct": _value(row.get("host_cpu_pct")),
                          "stack_set_cpu_pct": _value(row.get("stack_set_cpu_pct")),
                          **({"concurrency_ratio": _value(row.get("concurrency_ratio")),
                              **{k: _count(row.get(k)) for k in ("users", "unfinished_requests", "users_active",
                                                                 "users_stalled", "late_starts")}}
                             if flag.startswith("load_") else {})})
    return found


def _count(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _value(value: Any) -> Any:
    return None if value is None or pd.isna(value) else float(value)


def write_figures(analysis: Analysis, folder: Path) -> list[Path]:
    """Each figure as PNG and SVG files in ``folder``."""
    from farm.report import figures

    written: list[Path] = []
    if analysis.surface.empty:
        return written
    makers: dict[str, Callable[[], Figure | None]] = {
        "curves": lambda: figures.latency_curves(analysis.surface, analysis.metric, analysis.unit),
        "heatmaps": lambda: figures.heatmaps(analysis.surface, analysis.metric, analysis.unit)}
    if not analysis.difference.empty:
        makers["difference"] = lambda: figures.difference_map(analysis.difference, analysis.crossovers,
                                                              analysis.metric, analysis.unit)
    if not analysis.configs.empty and analysis.cost_benefit:
        makers["cost_frontier"] = lambda: figures.cost_frontier(analysis.configs, analysis.metric, analysis.unit,
                                                                analysis.cost_benefit[0].slo_ms)
    if figures.hit_ratio_by_instances(analysis.surface) is not None:
        makers["hit_ratio"] = lambda: figures.hit_ratio_by_instances(analysis.surface)
    for name, make in makers.items():
        for suffix in ("png", "svg"):
            fig = make()
            if fig is not None:
                path = folder / f"{name}.{suffix}"
                figures.save(fig, path)
                written.append(path)
    return written
