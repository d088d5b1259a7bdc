"""Bench: `farm serve`'s server time on a 10,000-cell sweep (goal: a page in ≤ 300 ms), and what its live channel
and its background answer cost.

    .venv/bin/python bench/serve.py [--runs 7] [--keep DIR]

Builds a SQLite store with one 10,200-cell sweep of the shop under way (architecture × 3 caches × 2 instance counts
× 50 loads × 17 repetitions; 9,000 cells done with 30-bucket histograms, 2 running, 20 failed, the rest pending),
written through the store's own API as workers write it. Then, in one process with the app (Starlette's test
client), reads each response's ``Server-Timing`` (request in to response start): the sweeps page; a sweep's page
while its answer is being computed in the background (a fresh app each run) and once it is computed; the JSON API
with the answer computed; the page of every cell; one tick of the live channel (every section rendered and hashed);
and the background computation itself (analysis, report document, figures). Prints the median of each.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from farm.store.views import version
from farm.web.answer import Answers, compute
from farm.web.app import make_app

SWEEP = """
name: big
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local, shared]
  instances: [1, 2]
  users: [{users}]
repetitions: 17
load: {{spawn_rate: 50, duration: 10s, warmup: 6s}}
slo: {{p95_ms: 200}}
"""
GOAL_MS = 300.0


def build_store(folder: Path) -> Store:
    """The store with the sweep under way."""
    store = Store(f"sqlite:///{folder / 'farm.db'}")
    store.migrate()
    loaded = parse_sweep(SWEEP.format(users=", ".join(str(u) for u in range(5, 255, 5))), source="big.yaml",
                         base=Path(__file__).resolve().parents[1])
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    rng = np.random.default_rng(7)
    buckets = np.arange(4, 34) * 5
    for cell in plan.cells[:9000]:
        p = cell.params
        slope = (1.0 if p["architecture"] == "monolith" else 0.6) / int(p["instances"])
        centre = (20 if p["architecture"] == "monolith" else 35) + cell.users * slope * (0.5 if p["cache"] != "none"
                                                                                          else 1.0)
        weights = np.exp(-((buckets - centre) / (0.3 * centre + 5)) ** 2)
        counts = rng.multinomial(400, weights / weights.sum())
        hist = {int(b): int(c) for b, c in zip(buckets, counts, strict=True) if c}
        total = EndpointStats("", "Aggregated", 400, 0, 40.0, centre, centre, centre * 1.2, centre * 1.3,
                              centre * 1.5, centre * 2, hist)
        store.mark_running(cell.id, {"name": f"lab-{cell.repetition % 3}"})
        store.record_result(cell.id, LoadResult((), total, 10.0, 6.0, 30.0, False, None), StackMetrics(None, None, []))
    store.mark_running(plan.cells[9000].id, {"name": "lab-1"})
    store.mark_running(plan.cells[9001].id, {"name": "lab-2"})
    store.record_failure([c.id for c in plan.cells[9002:9022]], "reset", "reset", "POST /farm/reset answered 500")
    return store


def server_ms(response: object) -> float:
    """The app's own time for a response, from its Server-Timing header."""
    header = response.headers["server-timing"]  # type: ignore[attr-defined]
    match = re.search(r"dur=([\d.]+)", header)
    assert match is not None and response.status_code == 200, (header, response.status_code)  # type: ignore[attr-defined]
    return float(match[1])


def main() -> None:
    from starlette.testclient import TestClient

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="build the store in this folder and leave it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="farm-serve-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {}

    def record(name: str, ms: float) -> None:
        times.setdefault(name, []).append(ms)

    try:
        started = time.perf_counter()
        store = build_store(folder) if not (folder / "farm.db").exists() else Store(f"sqlite:///{folder / 'farm.db'}")
        print(f"store built in {time.perf_counter() - started:.0f} s: {store.sweep('big').counts}")
        key = version(store, "big")
        answers = Answers(store)
        warm = make_app(store, artefacts_dir=folder / "artefacts", answers=answers)
        with TestClient(warm) as web:
            web.get("/api/sweeps/big")  # the answer computed once, and the file cache warm
            for _ in range(args.runs):  # in turn, so that a drift of the machine's speed touches each alike
                fresh = Answers(store)
                with TestClient(make_app(store, artefacts_dir=folder / "artefacts", answers=fresh)) as cold:
                    record("sweep page, answer being computed (fresh app)", server_ms(cold.get("/sweeps/big")))
                fresh.close()  # waits for its computation: the next figures are not measured beside it
                record("sweeps page `/`", server_ms(web.get("/")))
                record("sweep page, answer computed", server_ms(web.get("/sweeps/big")))
                record("JSON API, answer computed", server_ms(web.get("/api/sweeps/big")))
                record("every cell `/sweeps/big/cells` (10,200 rows)", server_ms(web.get("/sweeps/big/cells")))
                tick = time.perf_counter()
                warm.state.site.sweep_sections("big", "/")
                record("one live tick (every section rendered and hashed)", (time.perf_counter() - tick) * 1000)
                tick = time.perf_counter()
                compute(store, "big", key)
                record("the answer in the background (analysis, document, figures)",
                       (time.perf_counter() - tick) * 1000)
        answers.close()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"10,200-cell sweep (9,000 done), SQLite store; server time, median of {args.runs} runs, in turn")
    print("| request | median | min – max | ratio to the 300 ms goal |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        goal = f"{median / GOAL_MS:.2f}" if "page" in name or "API" in name or "tick" in name else "–"
        print(f"| {name} | {median:.0f} ms | {min(values):.0f} – {max(values):.0f} ms | {goal} |")


if __name__ == "__main__":
    main()
