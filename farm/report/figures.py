"""Figures as inline SVG (matplotlib, no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

STYLE = {"monolith": "-", "microservices": "--"}
CACHE_COLORS = {"none": "#c0392b", "local": "#2980b9", "shared": "#27ae60"}


def to_svg(fig: plt.Figure) -> str:
    """The figure as an SVG string, closed after use."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def latency_curves(curve: pd.DataFrame, metric: str = "p95_ms") -> str:
    """Latency against users: one panel per instance count, a line per (architecture, cache)."""
    instances = sorted(curve["instances"].unique()) if "instances" in curve else [1]
    fig, axes = plt.subplots(1, len(instances), figsize=(6.2 * len(instances), 4.2), squeeze=False)
    for ax, n in zip(axes[0], instances, strict=True):
        part = curve[curve["instances"] == n]
        for (arch, cache), line in part.groupby(["architecture", "cache"]):
            line = line.sort_values("users")
            ax.plot(line["users"], line[metric], STYLE.get(str(arch), ":"), marker="o",
                    color=CACHE_COLORS.get(str(cache), "#555"), label=f"{arch}, cache {cache}")
        ax.set_title(f"{n} instance{'s' if n != 1 else ''}")
        ax.set_xlabel("simulated users")
        ax.set_ylabel(f"{metric.removesuffix('_ms')} latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return to_svg(fig)
