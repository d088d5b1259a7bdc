"""The report's figures (matplotlib, no display): each returns a Figure; `save` writes SVG text or files."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from farm.analysis.crossover import Crossover

LINE = {"monolith": "-", "microservices": "--"}
CACHE_COLORS = {"none": "#c0392b", "local": "#2980b9", "shared": "#27ae60"}
plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
_P = ParamSpec("_P")
_R = TypeVar("_R")


# User strings (parameter values, sweep names) appear in titles, legends and ticks: a value such as `$x^2$`
# or `$\frac{1}{0}$` must print literally, never be parsed as mathtext (which renders or raises at draw time).
# Text objects read this setting when they are created, tick labels when the figure is drawn: both happen in here.
def _literal_text(make: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a figure function with mathtext parsing off, so every string in the figure is literal."""

    @functools.wraps(make)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with plt.rc_context({"text.parse_math": False, "text.usetex": False}):
            return make(*args, **kwargs)

    return wrapper


@_literal_text
def svg(fig: Figure) -> str:
    """The figure as inline SVG markup; the figure is closed."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


@_literal_text
def save(fig: Figure, path: Path) -> None:
    """Write the figure as PNG or SVG (by suffix); the figure is closed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight", dpi=130)
    plt.close(fig)


def _label(metric: str) -> str:
    return metric.removesuffix("_ms") + (" latency (ms)" if metric.endswith("_ms") else "")


@_literal_text
def latency_curves(surface: pd.DataFrame, metric: str = "p95_ms", unit: str = "users") -> Figure:
    """Metric against the load (users, or req/s offered) with 95% bands: a panel per instance count, a line per
    (architecture, cache)."""
    instances = sorted(surface["instances"].unique())
    fig, axes = plt.subplots(1, len(instances), figsize=(5.8 * len(instances), 3.8), squeeze=False)
    for ax, n in zip(axes[0], instances, strict=True):
        for (arch, cache), line in surface[surface["instances"] == n].groupby(["architecture", "cache"]):
            line = line.sort_values("users")
            color = CACHE_COLORS.get(str(cache), "#555")
            ax.plot(line["users"], line[metric], LINE.get(str(arch), ":"), marker="o", ms=3.5, color=color,
                    label=f"{arch} · cache {cache}")
            if line[f"{metric}_lo"].notna().any():
                ax.fill_between(line["users"], line[f"{metric}_lo"], line[f"{metric}_hi"], color=color, alpha=0.12)
        ax.set(title=f"{n} instance{'s' if n != 1 else ''}", xlabel="simulated users" if unit == "users" else unit,
               ylabel=_label(metric))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False)
    return fig


@_literal_text
def heatmaps(surface: pd.DataFrame, metric: str = "p95_ms", unit: str = "users") -> Figure:
    """The metric over users × cache, one heatmap per (architecture, instances), on one colour scale."""
    panels = sorted({(str(a), int(n)) for a, n in zip(surface["architecture"], surface["instances"], strict=True)})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 2.8), squeeze=False,
                             layout="constrained")
    vmin, vmax = surface[metric].min(), surface[metric].max()
    image = None
    for ax, (arch, n) in zip(axes[0], panels, strict=True):
        part = surface[(surface["architecture"] == arch) & (surface["instances"] == n)]
        grid = part.pivot_table(index="cache", columns="users", values=metric)
        image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="magma_r", vmin=vmin, vmax=vmax)
        ax.set_xticks(range(len(grid.columns)), [str(u) for u in grid.columns])
        ax.set_yticks(range(len(grid.index)), list(grid.index))
        for (i, j), value in np.ndenumerate(grid.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value > (vmin + vmax) / 2 else "black")
        ax.set(title=f"{arch} · {n} inst.", xlabel=unit, ylabel="cache")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label=_label(metric), shrink=0.85)
    return fig


@_literal_text
def difference_map(diff: pd.DataFrame, crossovers: list[Crossover], metric: str = "p95_ms",
                   unit: str = "users") -> Figure:
    """Microservices − monolith over users × cache (blue: microservices faster) with the crossover marked."""
    instances = sorted(diff["instances"].unique())
    fig, axes = plt.subplots(1, len(instances), figsize=(5.4 * len(instances), 2.9), squeeze=False,
                             layout="constrained")
    limit = float(np.nanmax(np.abs(diff["diff"]))) or 1.0
    image = None
    for ax, n in zip(axes[0], instances, strict=True):
        grid = diff[diff["instances"] == n].pivot_table(index="cache", columns="users", values="diff")
        users = list(grid.columns)
        image = ax.imshow(grid.to_numpy(dtype=float), aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(users)), [str(u) for u in users])
        ax.set_yticks(range(len(grid.index)), list(grid.index))
        for row, cache in enumerate(grid.index):
            c = next((c for c in crossovers if c.cache == str(cache) and c.instances == n and c.users), None)
            if c is None or c.users is None:
                continue
            x = float(np.interp(c.users, users, range(len(users))))
            lo = float(np.interp(c.low, users, range(len(users)))) if c.low is not None else x
            hi = float(np.interp(c.high, users, range(len(users)))) if c.high is not None else len(users) - 0.5
            ax.plot([lo, hi], [row, row], color="black", lw=1.5)
            ax.plot([x], [row], marker="|", ms=16, mew=2.5, color="black")
        ax.set(title=f"{n} inst.: microservices − monolith", xlabel=unit, ylabel="cache")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label=f"Δ {_label(metric)}", shrink=0.85)
    return fig


@_literal_text
def hit_ratio_by_instances(surface: pd.DataFrame) -> Figure | None:
    """Cache hit ratio against instances for local and shared caches (mean over loads), per architecture."""
    data = surface[surface["cache"].isin(["local", "shared"]) & surface["cache_hit_ratio"].notna()]
    if data.empty or data["instances"].nunique() < 2:  # a trend needs at least two instance counts
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for (arch, cache), part in data.groupby(["architecture", "cache"]):
        line = part.groupby("instances")["cache_hit_ratio"].mean()
        ax.plot(line.index, line.to_numpy(), LINE.get(str(arch), ":"), marker="o",
                color=CACHE_COLORS.get(str(cache), "#555"), label=f"{arch} · {cache}")
    ax.set(xlabel="instances", ylabel="cache hit ratio", ylim=(0, 1), title="Hit ratio as the cache is split")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, frameon=False)
    return fig


ARCH_COLORS = {"monolith": "#8e44ad", "microservices": "#e67e22"}


@_literal_text
def cost_frontier(configs: pd.DataFrame, metric: str = "p95_ms", unit: str = "users",
                  slo_ms: float | None = None) -> Figure:
    """Declared cost against the metric of every configuration measured, a panel per (comparison, load): the
    frontier of what meeting the SLO costs, per architecture (filled: meets it; bars: its 95% interval)."""
    labels = sorted(configs["label"].unique())
    loads = sorted(configs["load"].unique(), key=float)
    fig, axes = plt.subplots(len(labels), len(loads), figsize=(2.9 * len(loads), 2.5 * len(labels)),
                             squeeze=False, sharey=True, layout="constrained")
    for row, label in enumerate(labels):
        for col, load in enumerate(loads):
            ax = axes[row][col]
            here = configs[(configs["label"] == label) & (configs["load"] == load)]
            for arch, part in here.groupby("architecture"):
                part = part.sort_values("cost")
                color = ARCH_COLORS.get(str(arch), "#555")
                value = part[metric].to_numpy(dtype=float)
                low = np.nan_to_num(value - part[f"{metric}_lo"].to_numpy(dtype=float))
                high = np.nan_to_num(part[f"{metric}_hi"].to_numpy(dtype=float) - value)
                ax.errorbar(part["cost"], value, yerr=[low, high], fmt="none", ecolor=color, alpha=0.5, lw=1)
                meets = part["meets"].to_numpy(dtype=bool)
                ax.scatter(part["cost"][meets], value[meets], color=color, s=18, label=f"{arch}")
                ax.scatter(part["cost"][~meets], value[~meets], facecolors="none", edgecolors=color, s=18)
            if slo_ms is not None:
                ax.axhline(slo_ms, color="black", lw=0.8, ls="--")
            ax.set_yscale("log")  # a saturated configuration's p95 is orders of magnitude above the SLO
            ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set(title=f"{label} · {float(load):g} {unit}", xlabel="declared cost")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(_label(metric))
            if row == 0 and col == 0:
                ax.legend(fontsize=7, frameon=False)
    return fig
