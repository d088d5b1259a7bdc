"""A real SQLite store holding a sweep under way, for the `farm serve` tests: cells are written through the store's
own API, as a worker writes them, so that a test can make a cell land while a page watches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from farm.load.stats import EndpointStats, LoadResult
from farm.plan import Cell, expand
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from tests.conftest import ROOT

SWEEP = """name: {name}
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none]
  users: [5, 10, 20]
repetitions: 2
slo: {{p95_ms: 40}}
price: {{per_unit_hour: 0.04, currency: EUR}}
load: {{spawn_rate: 20, duration: 2s, warmup: 1s}}
"""


def planned(where: Path | str, name: str = "watched") -> tuple[Store, list[Cell]]:
    """A store (a SQLite file, or a database URL) with the sweep planned (every cell pending), and its cells in
    plan order."""
    store = Store(f"sqlite:///{where}" if isinstance(where, Path) else where)
    store.migrate()
    loaded = parse_sweep(SWEEP.format(name=name), source=f"{name}.yaml", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    return store, list(plan.cells)


def p95_of(cell: Cell) -> float:
    """The p95 a cell of this synthetic sweep measures: the monolith slower than microservices from 10 users on."""
    users = cell.users
    return float(10 + users * 2) if cell.params["architecture"] == "monolith" else float(18 + users)


def land(store: Store, cell: Cell, host: str = "lab-1", *, shift_ms: float = 0.0, seed: int = 0,
         artefacts: str | None = None) -> None:
    """Run ``cell`` on ``host`` as far as the store can tell: running, then done with a measured histogram."""
    rng = np.random.default_rng(seed + cell.repetition)
    base = p95_of(cell) + shift_ms
    samples = np.maximum(1, np.round(rng.normal(base * 0.8, base * 0.08, 400))).astype(int)
    values, counts = np.unique(samples, return_counts=True)
    hist = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    total = EndpointStats("", "Aggregated", 400, 0, 40.0, float(samples.mean()),
                          *(float(np.percentile(samples, q)) for q in (50, 90, 95, 99)), float(samples.max()), hist)
    store.mark_running(cell.id, {"name": host, "cpu_model": "test", "cores": 2})
    store.record_result(cell.id, LoadResult((), total, 2.0, 1.0, 20.0, False, artefacts=artefacts),
                        StackMetrics(None, None, []))
