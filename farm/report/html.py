"""The HTML report: one self-contained file (inline SVG and CSS, no script, nothing fetched)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from farm.analysis.answer import Analysis
from farm.analysis.bootstrap import RESAMPLES
from farm.life import CellStatus
from farm.load_level import RATE
from farm.report.provenance import Provenance

OPTIONAL = ("rate_saturated", "host_cpu_pct", "stack_set_cpu_pct", "host_saturated", "p95_ok_ms",  # when measured
            "unfinished_requests", "users_stalled", "late_starts", "concurrency_ratio")
# Flags of a done cell kept in the answer, and how the report names them (cells, then surface points).
FLAG_TEXT = (("rate_saturated", "short of the offered rate", "rate short"),
             ("host_saturated", "on a saturated host", "host saturated"),
             ("load_stalled", "with stalled users or late starts", "users stalled"),
             ("load_mismatch", "where Little's law does not hold", "Little's law"))
MAX_ROWS = 1000  # tables list at most this many cells; `farm results` has them all
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("farm.report", "."), autoescape=True)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def figures_svg(analysis: Analysis) -> dict[str, Markup]:
    """Every figure of the report as inline SVG, keyed by name (missing when there is nothing to draw)."""
    from farm.report import figures  # here: matplotlib costs ~1 s to import, and only figures need it

    out: dict[str, Markup] = {}
    surface, metric = analysis.surface, analysis.metric
    if surface.empty:
        return out
    if not analysis.difference.empty:
        out["difference"] = Markup(figures.svg(figures.difference_map(analysis.difference, analysis.crossovers,
                                                                       metric, analysis.unit)))
    out["curves"] = Markup(figures.svg(figures.latency_curves(surface, metric, analysis.unit)))
    out["heatmaps"] = Markup(figures.svg(figures.heatmaps(surface, metric, analysis.unit)))
    if not analysis.configs.empty and analysis.cost_benefit:
        out["cost_frontier"] = Markup(figures.svg(figures.cost_frontier(analysis.configs, metric, analysis.unit,
                                                                       analysis.cost_benefit[0].slo_ms)))
    hit = figures.hit_ratio_by_instances(surface)
    if hit is not None:
        out["hit_ratio"] = Markup(figures.svg(hit))
    return out


def render_html(analysis: Analysis, provenance: Provenance) -> str:
    """The report of one sweep as a self-contained HTML document."""
    cells = analysis.cells
    columns = [c for c in ("architecture", "cache", "instances", "users", "rate", "repetition", "status", "host",
                           "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "p95_ok_ms",
                           "cache_hit_ratio", "generator_cpu_pct", "rate_saturated", "host_cpu_pct",
                           "stack_set_cpu_pct", "host_saturated", "unfinished_requests", "users_stalled",
                           "late_starts", "concurrency_ratio") if c in cells.columns and
               (c not in OPTIONAL or cells[c].notna().any())]
    if analysis.load == RATE and "users" in columns:
        columns.remove("users")  # the rate, copied there for the analysis
    shown = cells.head(MAX_ROWS)
    rows = [{"failed": r["status"] != CellStatus.DONE or _flagged(r),
             "cells": [_fmt(r[c], 3 if c == "cache_hit_ratio" else 1) for c in columns]} for _, r in shown.iterrows()]
    surface_cols = [c for c in ("architecture", "cache", "instances", "users", "n", "rps", "p50_ms", "p95_ms",
                                "p95_ms_lo", "p95_ms_hi", "p99_ms", "error_ratio", "cache_hit_ratio")
                    if c in analysis.surface.columns]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        p=provenance, a=analysis, resamples=RESAMPLES, metric=analysis.metric.removesuffix("_ms"),
        figures=figures_svg(analysis),
        columns=columns, rows=rows,
        surface_cols=[analysis.unit if c == "users" else c for c in surface_cols],
        surface_rows=[[_fmt(r[c], 3 if c in ("error_ratio", "cache_hit_ratio") else 1) for c in surface_cols]
                      for _, r in analysis.surface.iterrows()],
        excluded=[{"id": r.get("id"), "params": ", ".join(f"{k}={r[k]}" for k in ("architecture", "cache",
                   "instances", "users") if k in r), "reason": r["reason"]}
                  for _, r in analysis.excluded.head(MAX_ROWS).iterrows()],
        excluded_total=len(analysis.excluded), shown=len(shown),
        done=int((cells["status"] == CellStatus.DONE).sum()) if not cells.empty else 0, total=len(cells),
        load_lines=load_lines(cells), generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), fmt=_fmt)


def load_lines(cells: pd.DataFrame) -> list[str]:
    """Each done cell whose load did not hold, in words (stalled users, unfinished requests, Little's law)."""
    from farm.load.omission import load_flags

    if cells.empty or not {"load_stalled", "load_mismatch"} & set(cells.columns):
        return []
    params = cells.attrs.get("params", ())
    lines = []
    for _, r in cells.iterrows():
        record = {k: (None if _missing(v) else v) for k, v in r.items()}
        record["params"] = {k: record.get(k) for k in params if record.get(k) is not None}
        if record.get("load_stalled") or record.get("load_mismatch"):
            label = ", ".join(f"{k}={record[k]}" for k in ("architecture", "cache", "instances", "users", "rate",
                                                         "repetition") if record.get(k) is not None)
            lines.append(f"{r['id']} ({label}): {', '.join(load_flags(record))}")
    return lines


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, dict | list | str) and bool(pd.isna(value)))


def _flagged(row: Any) -> bool:
    """Whether a done cell is flagged: short of its offered rate, its host's CPU saturated, its users stalled or
    its load off Little's law."""
    return any(bool(row.get(flag)) and not pd.isna(row.get(flag)) for flag, _, _ in FLAG_TEXT)


def render_markdown(analysis: Analysis, provenance: Provenance) -> str:
    """The same answer as Markdown, for the terminal."""
    lines = [f"# {_md(provenance.name)}", "",
             f"stack `{provenance.stack}` · {len(analysis.cells)} cells · hosts: {', '.join(analysis.hosts) or '–'}",
             ""]
    name = analysis.metric.removesuffix("_ms")
    if analysis.verdicts or not analysis.cache_verdicts:
        lines += [f"## Where microservices overtake the monolith ({name})", "",
                  "| cache | instances | verdict |", "|---|---|---|"]
        lines += [f"| {_md(v.cache)} | {v.instances} | {_md(v.describe())} |" for v in analysis.verdicts]
    if not analysis.verdicts and not analysis.cache_verdicts:
        lines.append("| – | – | no comparable monolith/microservices pairs |")
    if analysis.verdicts:
        lines += ["", f"Per load, microservices − monolith at 95% (bootstrap over repetitions, {RESAMPLES} resamples; "
                  "widened for few repetitions by Student's t, never narrower than a histogram bucket; "
                  "jointly over the loads). A point whose error ratio exceeds "
                  f"{analysis.max_error_ratio:.1%}, or whose users stalled, never counts as the faster one.", "",
                  f"| cache | inst | {analysis.unit} | diff ms | 95% interval | classification | errors over SLO | "
                  "short of the offered rate | users stalled |", "|---|---|---|---|---|---|---|---|---|"]
        for v in analysis.verdicts:
            lines += [f"| {_md(v.cache)} | {v.instances} | {_fmt(p.load, 0)} | {_fmt(p.diff)} | "
                      f"{'–' if p.low is None else f'{_fmt(p.low)} – {_fmt(p.high)}'} | {p.classification} | "
                      f"{', '.join(p.over_error_slo) or '–'} | {', '.join(p.saturated) or '–'} | "
                      f"{', '.join(p.stalled) or '–'} |" for p in v.points]
    if analysis.cache_verdicts:
        lines += ["", f"## Which cache gives the lowest {name}", "",
                  "Per load, the cache with the lowest value *wins* when it is significantly lower than every other "
                  "(95%, jointly over loads and rivals), else it is *tied* (≈) with those it cannot be told from.",
                  "", "| instances | which cache wins |", "|---|---|"]
        lines += [f"| {_md(c.label())} | {_md(c.describe())} |" for c in analysis.cache_verdicts]
    if analysis.host_verdicts:
        lines += ["", "### Per host", "", "| host | cache | instances | verdict |", "|---|---|---|---|"]
        lines += [f"| {_md(v.host)} | {_md(v.cache)} | {v.instances} | {_md(v.describe())} |"
                  for v in analysis.host_verdicts]
    lines += cost_markdown(analysis)
    if provenance.slo:
        lines += ["", f"## Recommendation (SLO: {_slo_text(provenance.slo)})", ""]
        lines += [f"- {line}" for line in analysis.recommendation] or ["- no finished cells yet"]
    lines += ["", "## Surface", "", f"| architecture | cache | inst | {analysis.unit} | n | p95 ms (95% CI) | rps | "
              "hit ratio | flags |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in analysis.surface.iterrows():
        lines.append(f"| {_md(r['architecture'])} | {_md(r['cache'])} | {r['instances']} | {r['users']} | {r['n']} | "
                     f"{_fmt(r['p95_ms'], 0)} ({_fmt(r['p95_ms_lo'], 0)}–{_fmt(r['p95_ms_hi'], 0)}) | "
                     f"{_fmt(r['rps'])} | {_fmt(r['cache_hit_ratio'], 2)} | {_point_flags(r)} |")
    if not analysis.sut_cost.empty:
        lines += ["", "## The SUT host's CPU", "", "| architecture | cache | inst | users | CPU ms / request | CPU % |",
                  "|---|---|---|---|---|---|"]
        for _, r in analysis.sut_cost.iterrows():
            lines.append(f"| {_md(r['architecture'])} | {_md(r['cache'])} | {r['instances']} | {r['users']} | "
                         f"{_fmt(r['cpu_ms_per_request'], 2)} | {_fmt(r['sut_cpu_pct'])} |")
    flagged = [f"{n} {text}" for text, n in _flag_counts(analysis.cells).items() if n]
    if flagged:
        lines += ["", "Flagged (kept in the answer): " + ", ".join(flagged)]
    lines += [f"- {_md(line)}" for line in load_lines(analysis.cells)]
    if provenance.warnings:
        lines += ["", "## Warnings (cells kept; the figures named are empty)", ""]
        lines += [f"- {_md(w['warning'])} ({w['cells']} cell{'s' if w['cells'] != 1 else ''})"
                  for w in provenance.warnings]
    if not analysis.excluded.empty:
        lines += ["", "Excluded: " + ", ".join(f"{n} {reason}" for reason, n in
                                              analysis.excluded["reason"].value_counts().items())]
    return "\n".join(lines) + "\n"


def cost_markdown(analysis: Analysis) -> list[str]:
    """The cost answer as Markdown: one line per cache setting, then each load's cheapest configurations."""
    if not analysis.cost_benefit:
        return []
    slo = analysis.cost_benefit[0].slo_ms
    lines = ["", f"## What does switching cost? (cheapest configuration with p95 ≤ {slo:g} ms)", "",
             "| cache | answer |", "|---|---|"]
    lines += [f"| {_md(c.cache)} | {_md(c.describe())} |" for c in analysis.cost_benefit]
    note = price_note(analysis.cost_benefit[0].price)
    lines += ["", note] if note else []
    lines += ["", f"| cache | {analysis.unit} | monolith | microservices | significantly cheaper |",
              "|---|---|---|---|---|"]
    for c in analysis.cost_benefit:
        for p in c.per_load:
            lines.append(f"| {_md(c.cache)} | {_fmt(p.load, 0)} | {_md(cheapest_text(p.monolith, c.price))} | "
                         f"{_md(cheapest_text(p.microservices, c.price))} | {_SIGN[p.sign]} |")
    return lines


_SIGN = {-1: "microservices", 1: "monolith", 0: "–"}


def cheapest_text(c: Any, price: Any = None) -> str:
    """An architecture's cheapest configuration at a load, e.g. ``cost 6 (5–6): catalog×2, cart×1 · p95 41 ms``;
    with the sweep's price, also what a million requests cost on it at the rate it sustained (``· 0.67 USD per
    million requests at 100 req/s``)."""
    if c is None:
        return "not measured"
    if c.cost is None:
        low = "none may" if c.cost_low is None else f"from cost {c.cost_low:g} it may"
        return f"none of {c.measured} up to cost {c.most_measured:g} meets it ({low})"
    interval = f"{c.cost:g}" if c.cost_low is None or c.cost_low == c.cost else f"{c.cost_low:g}–{c.cost:g}"
    replicas = ", ".join(f"{k}×{v}" for k, v in (c.replicas or {}).items())
    money = c.money(price) if price is not None else None
    paid = "" if money is None else f" · {money_text(money, price.currency)} per million requests at {c.rps:.0f} req/s"
    return f"cost {c.cost:g} (interval {interval}): {replicas} · p95 {_fmt(c.p95_ms, 0)} ms{paid}"


def price_note(price: Any) -> str:
    """The sweep's price, said once beside the cost table (empty without one)."""
    if price is None:
        return ""
    return (f"Priced at {price.per_unit_hour:g} {price.currency} per cost unit and hour (the sweep's `price:`): "
            "money per million requests is the configuration's cost × price × 10⁶ / (3600 × its req/s).")


def money_text(amount: float, currency: str) -> str:
    """An amount of money with three significant digits: ``0.0667 USD``, ``12.3 EUR``."""
    return f"{amount:.3g} {currency}"


def _flag_counts(cells: pd.DataFrame) -> dict[str, int]:
    """How many cells carry each flag (short of the offered rate, on a saturated host, users stalled, …)."""
    return {text: int(cells[flag].astype("boolean").fillna(False).sum()) if flag in cells.columns else 0
            for flag, text, _ in FLAG_TEXT}


def _point_flags(row: Any) -> str:
    """What a surface point is flagged with: ``rate short`` (achieved < 95% of offered), ``host saturated``, …"""
    flags = [text for flag, _, text in FLAG_TEXT if flag in row and bool(row[flag])]
    return ", ".join(flags) or "–"


def _md(value: object) -> str:
    """A user value as one Markdown table cell: a `|` or a line break would end the cell or the row."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _slo_text(slo: dict[str, Any]) -> str:
    parts = [f"p95 ≤ {slo['p95_ms']:g} ms"] if slo.get("p95_ms") else []
    parts.append(f"errors ≤ {slo.get('max_error_ratio', 0.01):.1%}")
    return ", ".join(parts)


_ENV.globals["slo_text"] = _slo_text
_ENV.globals["cheapest_text"] = cheapest_text
_ENV.globals["price_note"] = price_note
