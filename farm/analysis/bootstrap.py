"""The one interval method: a seeded bootstrap over repetitions, pooling whole repetitions' histograms.

The estimand at a point is the percentile of the merged histogram of all its repetitions (Locust's rule: the
largest bucket with at most floor(total × q) samples below it). A resample draws the point's repetitions with
replacement, pools their histograms and recomputes the percentile; the 2.5th and 97.5th percentiles of the
resamples are the 95% interval.

Why not what came before: a t-interval over per-repetition percentiles collapses to zero width when Locust's
buckets (1 ms below 100 ms) make the repetitions' p95 identical, and the single-repetition order-statistic
interval assumes independent samples, which queueing makes false (its coverage was ~20% in a simulation).
Repetitions are the independent unit, so only they are resampled; and because a histogram cannot resolve less
than its bucket, no interval is reported narrower than the bucket its estimate lies in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 1000
Z95 = 1.959963984540054
SEED = 20261130
PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
MEANS = ("rps", "cache_hit_ratio")


def bucket_width(ms: np.ndarray | pd.Series | float) -> np.ndarray:
    """The width of Locust's response-time bucket at ``ms``: 1 ms below 100 ms, 10 ms to 1 s, 100 ms above."""
    value = np.asarray(ms, dtype=float)
    return np.where(value < 100, 1.0, np.where(value < 1000, 10.0, 100.0))


@dataclass(frozen=True)
class PointDraws:
    """Per point (rows in the surface's order): estimates, and ``RESAMPLES`` bootstrap draws of each metric."""

    estimates: pd.DataFrame
    draws: dict[str, np.ndarray]  # metric -> (points, resamples)


def _weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How many times each of ``n`` repetitions is drawn, per resample: (resamples, n)."""
    offsets = (np.arange(resamples, dtype=np.int64) * n)[:, None]
    small = np.int16 if n <= np.iinfo(np.int16).max else np.int64  # drawing int16 is several times faster
    drawn = rng.integers(0, n, size=(resamples, n), dtype=small) + offsets
    return np.bincount(drawn.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float32)


def _pooled_quantiles(pooled: np.ndarray, ms: np.ndarray) -> dict[str, np.ndarray]:
    """Locust's percentiles of each row of pooled bucket counts (rows, buckets) over buckets ``ms``."""
    cum = np.cumsum(pooled, axis=1)
    below = cum - pooled
    total = cum[:, -1]
    out = {}
    for column, q in PERCENTILES.items():
        wanted = np.floor(total * q)
        index = (below <= wanted[:, None]).sum(axis=1) - 1  # below is non-decreasing: a prefix qualifies
        out[column] = ms[np.clip(index, 0, len(ms) - 1)].astype(float)
    return out


def _sums(data: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Per cell, the numerator and denominator of every pooled ratio: means over repetitions that measured the
    column, and failures over requests (so a point's error ratio is pooled, not an average of ratios)."""
    names, parts = [], []
    for column in MEANS:
        values = data[column].to_numpy(dtype=float) if column in data else np.full(len(data), np.nan)
        valid = ~np.isnan(values)
        names.append(column)
        parts += [np.where(valid, values, 0.0), valid.astype(float)]
    names.append("error_ratio")
    parts += [data["failures"].to_numpy(dtype=float), data["requests"].to_numpy(dtype=float)]
    return names, np.column_stack(parts)


def point_draws(data: pd.DataFrame, point: np.ndarray, points: int, hist: pd.DataFrame | None, *,
                resamples: int = RESAMPLES, seed: int = SEED) -> PointDraws:
    """Bootstrap every point: ``data`` holds usable cells, ``point`` each cell's point number (0…points-1)."""
    rng = np.random.default_rng(seed)
    columns = [*PERCENTILES, *MEANS, "error_ratio"]
    estimates = {c: np.full(points, np.nan) for c in columns}
    draws = {c: np.full((points, resamples), np.nan) for c in columns}
    by_point = _histograms_by_point(data, point, hist)
    order = np.argsort(point, kind="stable")
    bounds = np.searchsorted(point[order], np.arange(points + 1))
    ratio_names, sums = _sums(data)
    own = data.reindex(columns=list(PERCENTILES)).to_numpy(dtype=float)
    for p in range(points):
        rows = order[bounds[p]:bounds[p + 1]]
        n = len(rows)
        if n == 0:
            continue
        # Row 0 weighs every repetition once: the estimate itself.
        weights = np.vstack([np.ones((1, n), dtype=np.float32), _weights(rng, n, resamples)])
        got: dict[str, np.ndarray] = {}
        matrix = by_point.get(p)
        if matrix is not None:
            ms, counts = matrix
            got.update(_pooled_quantiles(weights @ counts, ms))
        else:  # no histograms (e.g. imported CSVs): the repetitions' own percentiles, averaged
            averaged = weights @ own[rows].astype(np.float32) / n
            got.update({column: averaged[:, i] for i, column in enumerate(PERCENTILES)})
        pooled = (weights @ sums[rows].astype(np.float32)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            for i, column in enumerate(ratio_names):
                top, bottom = pooled[:, 2 * i], pooled[:, 2 * i + 1]
                got[column] = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)
        for column in columns:
            estimates[column][p] = got[column][0]
            draws[column][p] = got[column][1:]
    return PointDraws(pd.DataFrame(estimates), draws)


def _histograms_by_point(data: pd.DataFrame, point: np.ndarray,
                         hist: pd.DataFrame | None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per point: its bucket values and a (repetitions, buckets) matrix of counts, one row per cell."""
    if hist is None or hist.empty:
        return {}
    cell_ids = pd.Index(data["id"].to_numpy())
    if cell_ids.is_unique:
        cell_row = cell_ids.get_indexer(hist["cell_id"])
        keep = cell_row >= 0
        rows = cell_row[keep].astype(np.int64)
        ms = hist["ms"].to_numpy()[keep]
        counts = hist["count"].to_numpy(dtype=float)[keep]
    else:  # a cell in several points (a monolith set against each microservices replica count): each gets it
        pairs = pd.DataFrame({"cell_id": cell_ids, "_row": np.arange(len(data))}).merge(hist, on="cell_id")
        rows, ms = pairs["_row"].to_numpy(dtype=np.int64), pairs["ms"].to_numpy()
        counts = pairs["count"].to_numpy(dtype=float)
    pts = point[rows]
    # Each cell's repetition number within its point, in the order point_draws walks the cells.
    order = np.argsort(point, kind="stable")
    rank = np.empty(len(point), dtype=np.int64)
    starts = np.searchsorted(point[order], point[order])
    rank[order] = np.arange(len(point)) - starts
    sizes = np.bincount(point, minlength=int(point.max()) + 1 if len(point) else 0)
    sort = np.argsort(pts, kind="stable")
    pts, rows, ms, counts = pts[sort], rows[sort], ms[sort], counts[sort]
    edges = np.flatnonzero(np.diff(pts)) + 1
    out = {}
    for chunk in np.split(np.arange(len(pts)), edges):
        if len(chunk) == 0:
            continue
        p = int(pts[chunk[0]])
        values, inverse = np.unique(ms[chunk], return_inverse=True)
        flat = rank[rows[chunk]] * len(values) + inverse
        matrix = np.bincount(flat, weights=counts[chunk], minlength=int(sizes[p]) * len(values))
        out[p] = (values, matrix.reshape(int(sizes[p]), len(values)).astype(np.float32))
    return out


def small_sample_stretch(repetitions: np.ndarray | int) -> np.ndarray:
    """How much wider a bootstrap interval over n repetitions must be to hold its 95%: sqrt(n/(n-1)) (the
    resamples' variance is (n-1)/n of the data's) × t(0.975, n-1) / z(0.975) (the spread itself is estimated
    from n values). 1.8 at 5 repetitions, 2.7 at 3, 9.2 at 2; 1 for a single repetition, which has no interval.
    """
    n = np.maximum(np.asarray(repetitions, dtype=float), 2.0)
    return np.sqrt(n / (n - 1)) * t975(n - 1) / Z95


# Student's t 97.5% quantile for 1-30 degrees of freedom (scipy.stats.t.ppf, 12 decimals). Not scipy itself:
# importing scipy.stats took 1.7-2.7 s of every `farm report` and `farm run` for one number per point.
_T975 = (12.706204736175, 4.302652729749, 3.182446305284, 2.776445105198, 2.570581835636, 2.446911851145,
         2.364624251593, 2.306004135204, 2.262157162798, 2.228138851986, 2.200985160092, 2.178812829667,
         2.160368656463, 2.144786687918, 2.131449545560, 2.119905299221, 2.109815577833, 2.100922040241,
         2.093024054408, 2.085963447266, 2.079613844728, 2.073873067904, 2.068657610419, 2.063898561628,
         2.059538552753, 2.055529438643, 2.051830516480, 2.048407141795, 2.045229642133, 2.042272456301)


def t975(df: np.ndarray | float) -> np.ndarray:
    """Student's t 97.5% quantile for whole degrees of freedom ≥ 1: the table up to 30, beyond it the
    Cornish-Fisher expansion in 1/df (within 3e-8 of scipy's from 31 on)."""
    v = np.maximum(np.asarray(df, dtype=float), 1.0)
    z = Z95
    series = (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
              + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
              + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))
    table = np.asarray(_T975)[np.clip(np.round(v).astype(int), 1, len(_T975)) - 1]
    return np.where(v <= len(_T975), table, series)


def interval(estimate: np.ndarray, draws: np.ndarray, floor_half: np.ndarray,
             repetitions: np.ndarray | None = None,
             bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[np.ndarray, np.ndarray]:
    """The 95% percentile interval of ``draws`` (rows), widened to at least ``estimate ± floor_half``, within
    the values the metric can take (``bounds``: a latency is never below 0 ms, a ratio stays in [0, 1]).

    With ``repetitions`` each side is stretched about the estimate by `small_sample_stretch`: a bootstrap over
    a handful of repetitions is too narrow otherwise (in simulations with 3 repetitions, by a factor of two).
    The stretch is symmetric, so without ``bounds`` two repetitions far apart gave a p95 from -39.5 ms.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric no cell measured (all NaN) stays NaN
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=1) if draws.size else (estimate, estimate)
    if repetitions is not None:
        stretch = small_sample_stretch(repetitions)
        low, high = estimate - (estimate - low) * stretch, estimate + (high - estimate) * stretch
    low, high = np.fmin(low, estimate - floor_half), np.fmax(high, estimate + floor_half)
    return bounded(low, high, bounds)


def bounded(low: np.ndarray, high: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """An interval cut to the values its quantity can take (NaN stays NaN)."""
    return np.clip(low, *bounds), np.clip(high, *bounds)


def metric_bounds(column: str) -> tuple[float, float]:
    """The values a surface metric can take: ratios in [0, 1], latencies and throughput ≥ 0."""
    return (0.0, 1.0) if column.endswith("ratio") else (0.0, np.inf)
