"""Bench: the analysis of 100,000 cells (surfaces, bootstrap intervals, verdicts, recommendation) and the report.

    .venv/bin/python bench/analysis.py [--cells 100000] [--buckets 30]

Synthetic cells on a grid (architecture × cache × instances × users × repetitions) whose response-time
histograms have ``--buckets`` buckets each, as Locust's do; timings are the median of 3 runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from farm.analysis.answer import analyse
from farm.analysis.bootstrap import RESAMPLES
from farm.report.html import Provenance, render_html


def synthetic(cells: int, buckets: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``cells`` cells over a grid, with histograms; monolith and microservices cross inside the grid."""
    rng = np.random.default_rng(seed)
    users = np.array([5, 10, 20, 30, 40, 60, 80, 100, 150, 200])
    grid = [(a, c, i, u) for a in ("monolith", "microservices") for c in ("none", "local", "shared")
            for i in (1, 2, 3, 4, 5) for u in users]
    reps = int(np.ceil(cells / len(grid)))
    rows = [(a, c, i, u, r) for a, c, i, u in grid for r in range(1, reps + 1)][:cells]
    frame = pd.DataFrame(rows, columns=["architecture", "cache", "instances", "users", "repetition"])
    base = np.where(frame["architecture"] == "monolith", 10 + frame["users"] * 0.8, 20 + frame["users"] * 0.4)
    centre = base / frame["instances"] ** 0.5 * rng.normal(1, 0.05, len(frame))
    frame = frame.assign(id=[f"c{i}" for i in range(len(frame))], host="lab1", status="done",
                         generator_saturated=False, requests=1000, failures=0, rps=frame["users"] * 5.0,
                         p50_ms=centre, p95_ms=centre * 1.6, p99_ms=centre * 2.0,
                         cache_hits=np.where(frame["cache"] == "none", np.nan, 600.0),
                         cache_misses=np.where(frame["cache"] == "none", np.nan, 400.0))
    offsets = np.linspace(0.5, 2.5, buckets)
    ms = np.round(np.outer(centre, offsets)).astype(np.int64).ravel()
    counts = np.tile(np.round(1000 * np.exp(-((offsets - 1) ** 2) * 2) / 60).astype(np.int64) + 1, len(frame))
    hist = pd.DataFrame({"cell_id": np.repeat(frame["id"].to_numpy(), buckets), "ms": ms, "count": counts})
    return frame, hist


def timed(fn, runs: int = 3) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--buckets", type=int, default=30)
    args = parser.parse_args()
    cells, hist = synthetic(args.cells, args.buckets)
    seconds, result = timed(lambda: analyse(cells, hist, slo_ms=60))
    crossings = sum(v.verdict == "crossover" for v in result.verdicts)  # type: ignore[attr-defined]
    small, small_hist = synthetic(600, args.buckets)
    provenance = Provenance("bench", "shop", "name: bench\n", {}, None, None, {"p95_ms": 60})
    small_analysis = analyse(small, small_hist, slo_ms=60)
    render_s, html = timed(lambda: render_html(small_analysis, provenance))
    big_render_s, _ = timed(lambda: render_html(result, provenance), runs=1)  # type: ignore[arg-type]
    print(f"cells: {len(cells)} ({len(hist)} histogram buckets); points: {len(result.surface)}; "  # type: ignore[attr-defined]
          f"comparisons with a crossover: {crossings} of {len(result.verdicts)}")  # type: ignore[attr-defined]
    print("| step | time | goal | ratio to goal |")
    print("|---|---|---|---|")
    print(f"| analysis of {len(cells):,} cells (surfaces, bootstrap intervals ({RESAMPLES} resamples), verdicts, "
          f"recommendation) | {seconds:.2f} s | 3 s "
          f"| {seconds / 3:.2f} |")
    size = len(html) // 1024  # type: ignore[arg-type]
    print(f"| HTML report of a 600-cell sweep (figures included) | {render_s:.2f} s ({size} KiB) | – | – |")
    print(f"| HTML report of the 100,000-cell analysis | {big_render_s:.2f} s | – | – |")


if __name__ == "__main__":
    main()
