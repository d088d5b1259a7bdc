"""User strings in figures and reports are literal: a parameter value that looks like mathtext is drawn as typed."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from farm.analysis.answer import Analysis, analyse
from farm.report import figures
from farm.report.build import write_figures
from farm.report.html import Provenance, render_html, render_markdown
from tests.unit.test_analysis import synthetic

FRACTION = r"$\frac{1}{0}$"  # valid mathtext: would be drawn as a fraction
BROKEN = r"$\nosuchcommand{x}$"  # invalid mathtext: raises while drawing if parsed
CACHES = (FRACTION, BROKEN, "local")


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    # Given cells whose cache parameter holds mathtext-looking values, for two instance counts (every figure)
    cells, hist = synthetic(reps=2, caches=CACHES)
    more = cells.assign(instances=2, id=cells["id"] + "-2")
    more_hist = hist.assign(cell_id=hist["cell_id"] + "-2")
    cells = pd.concat([cells, more], ignore_index=True).assign(cache_hits=50, cache_misses=50)
    return analyse(cells, pd.concat([hist, more_hist], ignore_index=True))


def texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def test_every_figure_draws_mathtext_looking_values_literally(analysis: Analysis) -> None:
    # When every figure is made and drawn to SVG under matplotlib's default settings (mathtext on)
    assert plt.rcParams["text.parse_math"] is True
    made = {"curves": figures.latency_curves(analysis.surface, analysis.metric),
            "heatmaps": figures.heatmaps(analysis.surface, analysis.metric),
            "difference": figures.difference_map(analysis.difference, analysis.crossovers, analysis.metric),
            "hit_ratio": figures.hit_ratio_by_instances(analysis.surface)}
    for name, fig in made.items():
        assert fig is not None, name
        markup = figures.svg(fig)  # draws every text: a parsed BROKEN value would raise here
        # Then it renders, and every text holding a user value is the value itself, not parsed as math
        assert markup.startswith("<svg")
        drawn = texts(fig)
        assert all(not t.get_parse_math() for t in drawn), name
        labels = " | ".join(t.get_text() for t in drawn)
        if name != "hit_ratio":  # the hit-ratio figure shows only the local and shared caches
            assert FRACTION in labels and BROKEN in labels, (name, labels)
    assert plt.rcParams["text.parse_math"] is True  # the global setting is left as it was


def test_the_legend_label_is_the_literal_value(analysis: Analysis) -> None:
    fig = figures.latency_curves(analysis.surface, analysis.metric)
    legend = fig.axes[0].get_legend()
    assert legend is not None
    assert f"monolith · cache {FRACTION}" in [t.get_text() for t in legend.get_texts()]
    figures.svg(fig)


def test_figure_files_and_reports_render(analysis: Analysis, tmp_path: Path) -> None:
    # When figure files, the HTML and the Markdown report are written
    written = write_figures(analysis, tmp_path)
    provenance = Provenance("literal", "shop", "name: literal\n", {}, None, None, None)
    html = render_html(analysis, provenance)
    markdown = render_markdown(analysis, provenance)
    # Then every file exists and the value appears as typed (HTML-escaped where HTML needs it)
    assert {p.name for p in written} >= {"curves.png", "curves.svg", "heatmaps.png", "difference.svg"}
    assert all(p.stat().st_size > 0 for p in written)
    assert FRACTION in html and FRACTION in markdown
