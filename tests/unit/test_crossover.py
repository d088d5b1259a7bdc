"""The first report's crossover: lowest load where microservices' p95 is below the monolith's."""

from __future__ import annotations

import pandas as pd

from farm.analysis.crossover import first_crossovers


def frame(rows: list[tuple[str, str, int, float]], **extra: object) -> pd.DataFrame:
    return pd.DataFrame([{"architecture": a, "cache": c, "instances": 1, "users": u, "p95_ms": p,
                          "status": "done", "generator_saturated": False, **extra} for a, c, u, p in rows])


def test_the_lowest_load_where_microservices_win_is_found_per_cache() -> None:
    data = frame([("monolith", "none", 5, 10), ("microservices", "none", 5, 14),
                  ("monolith", "none", 20, 30), ("microservices", "none", 20, 25),
                  ("monolith", "local", 5, 8), ("microservices", "local", 5, 12),
                  ("monolith", "local", 20, 12), ("microservices", "local", 20, 16)])
    found = {c.cache: c for c in first_crossovers(data)}
    assert found["none"].users == 20
    assert found["local"].users is None
    assert found["local"].describe() == "not reached in this sweep"


def test_saturated_and_failed_cells_do_not_count() -> None:
    data = frame([("monolith", "none", 5, 10), ("microservices", "none", 5, 5)])
    assert first_crossovers(data)[0].users == 5
    data.loc[1, "generator_saturated"] = True
    assert first_crossovers(data) == []  # no usable microservices cell left to compare
    data.loc[1, "generator_saturated"] = False
    data.loc[1, "status"] = "failed"
    assert first_crossovers(data) == []
