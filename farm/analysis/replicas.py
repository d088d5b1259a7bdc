"""Per-service replicas in the analysis: configurations that differ in a ``replicas.<service>`` are compared
apart (never pooled as repetitions), and the architecture that does not run that service is set against each.

A sweep that scales microservices' catalog over 1, 2, 3 has monolith cells without ``replicas.catalog`` (the
monolith runs no catalog). Each catalog count is its own comparison, labelled like ``none · catalog×2``; the
monolith's cells take part in each of them (repeated, one copy per count), so every microservices configuration
is compared point by point with the same monolith measurements.
"""

from __future__ import annotations

import pandas as pd

from farm.stacks.scaling import PREFIX, is_replica_key


def replica_columns(cells: pd.DataFrame) -> list[str]:
    """The ``replicas.<service>`` parameter columns whose value varies among the cells that have one."""
    params = cells.attrs.get("params", ())
    return [k for k in params if is_replica_key(k) and k in cells.columns and cells[k].dropna().nunique() > 1]


def spread(cells: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Each cell that lacks a replica column's value repeated once per value of it (see the module docstring)."""
    for column in columns:
        values = sorted(cells[column].dropna().unique())
        missing = cells[cells[column].isna()]
        if missing.empty:
            continue
        copies = [missing.assign(**{column: value}) for value in values]
        cells = pd.concat([cells[cells[column].notna()], *copies], ignore_index=True).__finalize__(cells)
    return cells


def label(cells: pd.DataFrame, columns: list[str]) -> pd.Series:
    """`` · catalog×2 pricing×1`` per cell: the replicas it was compared at ("" for a cell that has none)."""
    def text(row: pd.Series) -> str:
        parts = [f"{c.removeprefix(PREFIX)}×{int(row[c])}" for c in columns if pd.notna(row[c])]
        return " · " + " ".join(parts) if parts else ""

    return cells[columns].apply(text, axis=1) if len(cells) else pd.Series(dtype=str)


def scale_of(label: str) -> str:
    """The replica counts a comparison label names (``catalog×2`` of ``none · catalog×2``), or ""."""
    return " ".join(part for part in label.split(" · ")[1:] if "×" in part)


def without_scale(label: str) -> str:
    """A comparison label without its replica counts (``none`` of ``none · catalog×2``)."""
    return " · ".join(part for i, part in enumerate(label.split(" · ")) if i == 0 or "×" not in part)
