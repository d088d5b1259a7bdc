"""`farm report NAME --format json` on its lean path: the same document as the full command, read with sqlite3,
without importing SQLAlchemy, Typer, matplotlib or scipy (their imports were most of its 3.8 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from farm.analysis.bootstrap import t975
from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.readonly import ReadOnlyStore, connect
from farm.report.build import report_json
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from tests.conftest import ROOT, farm

pytestmark = pytest.mark.integration

SWEEP = """name: lean
stack: shop
matrix: {architecture: [monolith, microservices], cache: [none, local], users: [5, 10]}
load: {spawn_rate: 10, duration: 5s, warmup: 2s}
repetitions: 3
slo: {p95_ms: 30}
"""


def a_finished_sweep(folder: Path) -> str:
    """A SQLite store holding a sweep of every kind of cell: done (with warnings, flags, booleans), failed."""
    url = f"sqlite:///{folder / 'farm.db'}"
    store = Store(url)
    store.migrate()
    loaded = parse_sweep(SWEEP, source="lean.yaml", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    rng = np.random.default_rng(11)
    for i, cell in enumerate(plan.cells):
        store.mark_running(cell.id, {"name": f"host-{i % 2}", "cpu_model": "x", "cores": 2, "memory_gib": 4})
        if i == 3:
            store.record_failure([cell.id], "reset", "reset", "cache reset failed on app#0")
            continue
        base = 10 + cell.users * (1.0 if cell.params["architecture"] == "monolith" else 0.6)
        samples = np.maximum(1, np.round(rng.normal(base, 2, 400))).astype(int)
        values, counts = np.unique(samples, return_counts=True)
        total = EndpointStats("", "Aggregated", 400, i % 3, 40.0, float(samples.mean()),
                              *(float(np.percentile(samples, q)) for q in (50, 90, 95, 99)), float(samples.max()),
                              {int(v): int(c) for v, c in zip(values, counts, strict=True)})
        hits = None if cell.params["cache"] == "none" else 300
        store.record_result(cell.id, LoadResult((), total, 5.0, 2.0, 95.0 if i == 5 else 30.0, i == 5, None),
                            StackMetrics(hits, None if hits is None else 100, []), host_saturated=i == 7,
                            warnings=["metrics of app#0 (http://x/metrics): 'cache' must be an object"]
                            if i % 4 == 0 else None)
    return url


def test_the_sqlite_reader_gives_the_report_the_store_gives(tmp_path: Path) -> None:
    # Given a finished sweep in a SQLite store
    url = a_finished_sweep(tmp_path)
    # When its JSON report is built from the store (SQLAlchemy) and from the read-only reader (sqlite3)
    full = report_json(Store(url), "lean")
    with connect(url) as conn:
        assert conn is not None
        lean = report_json(ReadOnlyStore(conn), "lean")
    # Then the two documents are the same
    assert json.dumps(lean, indent=2) == json.dumps(full, indent=2)
    assert lean["warnings"] and lean["comparisons"]


def test_farm_report_json_prints_what_the_full_path_prints_and_loads_no_heavy_module(workdir: Path) -> None:
    # Given a finished sweep
    a_finished_sweep(workdir)
    # When the JSON report is asked for on the lean path and on the full path (--debug is not a lean form)
    lean = farm("report", "lean", "--format", "json", cwd=workdir)
    full = farm("--debug", "report", "lean", "-f", "json", cwd=workdir)
    # Then both print the same document
    assert lean.returncode == full.returncode == 0, lean.stderr + full.stderr
    assert lean.stdout == full.stdout and json.loads(lean.stdout)["sweep"] == "lean"
    # And the lean path answered without importing the modules that made it slow
    probe = ("import sys\nfrom farm.commands.fastpath import answer\n"
             "assert answer(['report', 'lean', '--format', 'json'])\n"
             "heavy = ('sqlalchemy', 'typer', 'matplotlib', 'scipy', 'pydantic', 'celery', 'jinja2')\n"
             "print([m for m in heavy if m in sys.modules], file=sys.stderr)\n")
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "FARM_DATABASE_URL": f"sqlite:///{workdir / 'farm.db'}"})
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stderr.strip() == "[]", loaded.stderr
    # And an unknown sweep still gets the full path's one-line error
    missing = farm("report", "nothing", "--format", "json", cwd=workdir)
    assert missing.returncode == 2 and "no sweep named 'nothing'" in missing.stderr, missing.stderr


def test_the_t_quantile_without_scipy_is_scipys() -> None:
    from scipy import stats

    df = np.arange(1, 501)
    assert np.allclose(t975(df), stats.t.ppf(0.975, df), rtol=0, atol=1e-7)
