"""The HTML report: one self-contained file (inline SVG and CSS, no script, no network)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import jinja2
import pandas as pd

from farm.analysis.crossover import first_crossovers, mean_curve, usable
from farm.report.figures import latency_curves

TEMPLATE = jinja2.Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loadfarm — {{ name }}</title>
<style>
 body{font-family:system-ui,sans-serif;max-width:1180px;margin:2em auto;color:#222;padding:0 1em}
 h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
 table{border-collapse:collapse;margin:1em 0;font-size:.9em} td,th{border:1px solid #ddd;padding:.3em .6em}
 th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
 .answer{background:#eef6ff;border-left:4px solid #2980b9;padding:.8em 1em;margin:1em 0}
 .failed{color:#c0392b} pre{background:#f8f8f8;padding:1em;overflow:auto;font-size:.85em}
</style></head><body>
<h1>{{ name }}</h1>
<p class="sub">stack <b>{{ stack }}</b> · {{ cells_done }} of {{ cells_total }} cells done ·
 generated {{ generated }}</p>
<div class="answer"><b>Where do microservices overtake the monolith ({{ metric }})?</b>
<table><tr><th>cache</th><th>instances</th><th>answer</th></tr>
{% for c in crossovers %}<tr><td>{{ c.cache }}</td><td class="num">{{ c.instances }}</td>
<td>{{ c.describe() }}</td></tr>
{% else %}<tr><td colspan="3">No comparable monolith/microservices pairs in this sweep.</td></tr>{% endfor %}
</table></div>
<h2>Latency against load</h2>
{{ figure }}
<h2>Cells</h2>
<table><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr class="{{ row.cls }}">
{% for v in row.cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if excluded %}<p>Excluded from the figures: {{ excluded }}</p>{% endif %}
<h2>Provenance</h2>
<p>Hosts: {{ hosts }}</p>
<pre>{{ spec_text }}</pre>
</body></html>""", autoescape=True)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def render_html(name: str, stack: str, spec_text: str, frame: pd.DataFrame, metric: str = "p95_ms") -> str:
    """The report of one sweep as an HTML document."""
    good = usable(frame)
    figure = latency_curves(mean_curve(good, metric), metric) if not good.empty else "<p>No finished cells yet.</p>"
    columns = [c for c in ("architecture", "cache", "instances", "users", "repetition", "status", "host",
                           "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms", "cache_hit_ratio",
                           "generator_cpu_pct") if c in frame.columns]
    rows = [{"cls": "failed" if r["status"] != "done" else "", "cells": [_fmt(r[c]) for c in columns]}
            for _, r in frame.iterrows()]
    bad = frame[~frame.index.isin(good.index)] if not frame.empty else frame
    excluded = ", ".join(f"{len(g)} {status}" for status, g in bad.groupby("status")) if not bad.empty else ""
    hosts = ", ".join(sorted({str(h) for h in frame.get("host", pd.Series(dtype=str)).dropna()})) or "–"
    return TEMPLATE.render(
        name=name, stack=stack, metric=metric.removesuffix("_ms"), crossovers=first_crossovers(frame, metric),
        figure=jinja2.utils.markupsafe.Markup(figure), headers=columns, rows=rows, excluded=excluded,
        hosts=html.escape(hosts), spec_text=spec_text,
        cells_done=int((frame["status"] == "done").sum()) if not frame.empty else 0, cells_total=len(frame),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
