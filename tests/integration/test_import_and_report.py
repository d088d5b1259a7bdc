"""Import of real classic-script Locust CSVs, and the report rendered in real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from farm.store.repository import Store
from tests.conftest import ROOT, farm

pytestmark = pytest.mark.integration


def classic_run(url: str, users: int, instances: int, folder: Path) -> None:
    """What the classic script ran per cell: locust --headless -u U -r 10 --run-time T --csv output_u_U_i_I."""
    subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "shop.py"), "--headless",
                    "--host", url, "-u", str(users), "-r", "10", "--run-time", "3s", "--only-summary",
                    "--csv", f"output_u_{users}_i_{instances}", "--exit-code-on-error", "0"],
                   cwd=folder, check=True, capture_output=True, timeout=60)


@pytest.mark.usefixtures("nginx_available")
def test_classic_csvs_from_a_real_locust_run_import_and_bad_files_are_named(workdir: Path) -> None:
    # Given the classic script's output of two real Locust runs, and one corrupt file
    results = workdir / "classic"
    results.mkdir()
    manifest = load_manifest(ROOT / "stacks" / "shop")
    driver = LocalDriver(workdir / "deployments")
    deployment = driver.up(manifest, {**manifest.defaults(), "instances": 1}, "classic")
    try:
        driver.ready(deployment, time.monotonic() + 30)
        for users in (2, 4):
            classic_run(deployment.entry_url, users, 1, results)
    finally:
        driver.down(deployment)
    (results / "output_u_9_i_1_stats.csv").write_text("this is not,a locust file\n1,2\n")
    # When they are imported
    result = farm("import", str(results), "--sweep", "classic", "--param", "architecture=monolith", cwd=workdir)
    # Then the corrupt file is named, the exit code says so, and the readable runs are stored
    assert result.returncode == 1
    assert "output_u_9_i_1_stats.csv" in result.stderr and "not a Locust stats CSV" in result.stderr
    cells = json.loads(farm("results", "classic", "-f", "json", cwd=workdir).stdout)
    assert sorted(c["params"]["users"] for c in cells) == [2, 4]
    for cell in cells:
        users = cell["params"]["users"]
        with open(results / f"output_u_{users}_i_1_stats.csv") as fh:
            aggregated = next(line.split(",") for line in fh if ",Aggregated," in line)
        assert cell["requests"] == int(aggregated[2]) > 0
        assert cell["params"]["architecture"] == "monolith" and cell["params"]["instances"] == 1
        assert cell["p95_ms"] is not None and cell["rps"] > 0
    # And the imported sweep can be reported like any other
    assert farm("report", "classic", "-o", str(workdir / "classic.html"), cwd=workdir).returncode == 0


def synthetic_store(path: Path) -> None:
    """A stored sweep with a known crossover at 20 users, three repetitions, histograms included."""
    store = Store(f"sqlite:///{path}")
    store.migrate()
    text = ("name: synthetic\nstack: shop\nmatrix:\n  architecture: [monolith, microservices]\n"
            "  cache: [none, local, shared]\n  instances: [1, 2]\n  users: [5, 10, 15, 25, 30, 40]\n"
            "repetitions: 3\nslo: {p95_ms: 40}\n")
    loaded = parse_sweep(text, source="synthetic.yaml", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    rng = np.random.default_rng(3)
    for cell in plan.cells:
        p = cell.params
        speedup = {"none": 1.0, "local": 0.7, "shared": 0.8}[str(p["cache"])] / int(p["instances"])
        base = (10 + cell.users * speedup) if p["architecture"] == "monolith" else (20 + 0.5 * cell.users * speedup)
        samples = np.maximum(1, np.round(rng.normal(base, base * 0.1, 500))).astype(int)
        values, counts = np.unique(samples, return_counts=True)
        hist = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
        total = EndpointStats("", "Aggregated", 500, 0, 50.0, float(samples.mean()),
                              *(float(np.percentile(samples, q)) for q in (50, 90, 95, 99)), float(samples.max()),
                              hist)
        store.mark_running(cell.id, {"name": "lab-1", "cpu_model": "test", "cores": 2})
        hits = None if p["cache"] == "none" else int(400 / int(p["instances"]))
        store.record_result(cell.id, LoadResult((), total, 10.0, 2.0, 30.0, False, None),
                            StackMetrics(hits, None if hits is None else 500 - hits, []))


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def test_the_report_renders_in_headless_chromium_without_console_errors(workdir: Path) -> None:
    # Given a sweep with a known crossover
    synthetic_store(workdir / "farm.db")
    # When its report is written
    result = farm("report", "synthetic", "-o", "report.html", "--figures", "figs", cwd=workdir)
    assert result.returncode == 0, result.stderr
    html = (workdir / "report.html").read_text()
    # Then it is self-contained and says the answer
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']https?://|url\(\s*["']?https?://""", html)  # nothing fetched
    assert html.count("<svg") >= 4
    assert "at ~2" in html  # the crossover near 20 users is stated
    assert "up to ~" in html  # the recommendation is phrased by load
    assert {p.name for p in (workdir / "figs").iterdir()} >= {"curves.png", "difference.svg", "heatmaps.png"}
    # And headless Chromium renders it with no console error, and the screenshot shows the plots
    browser = chromium()
    shot = workdir / "shot.png"
    run = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={workdir / 'chrome'}", "--enable-logging=stderr", "--v=0",
                          "--window-size=1280,2400", f"--screenshot={shot}", f"file://{workdir / 'report.html'}"],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    image = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    colourful = (image.max(axis=2) - image.min(axis=2)) > 60  # plot colours, not text or white
    assert colourful.mean() > 0.02


@pytest.mark.usefixtures("nginx_available")
def test_refine_runs_real_cells_inside_the_crossover_bracket(workdir: Path) -> None:
    # Given a stored sweep whose (recorded) crossover lies between 2 and 6 users
    store = Store(f"sqlite:///{workdir / 'farm.db'}")
    store.migrate()
    text = ("name: narrow\nstack: shop\nmatrix:\n  architecture: [monolith, microservices]\n  cache: [local]\n"
            "  users: [2, 6]\nload: {duration: 2s, warmup: 1s}\n")
    loaded = parse_sweep(text, source="narrow.yaml", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    for cell in plan.cells:
        mono = cell.params["architecture"] == "monolith"
        p95 = (5.0 if cell.users == 2 else 30.0) if mono else (10.0 if cell.users == 2 else 12.0)
        total = EndpointStats("", "Aggregated", 100, 0, 10.0, p95, p95, p95, p95, p95, p95, {int(p95): 100})
        store.mark_running(cell.id, {"name": "box"})
        store.record_result(cell.id, LoadResult((), total, 10.0, 1.0, 10.0, False, None), StackMetrics(1, 1, []))
    # When it is refined
    dry = farm("refine", "narrow", "--dry-run", cwd=workdir)
    assert dry.returncode == 0 and "between 2 and 6 users → adding [4]" in dry.stdout
    result = farm("refine", "narrow", cwd=workdir)
    # Then the new load level ran for real on both architectures, and the sweep knows it
    assert result.returncode == 0, result.stderr
    cells = json.loads(farm("results", "narrow", "-f", "json", cwd=workdir).stdout)
    refined = [c for c in cells if c["params"]["users"] == 4]
    assert len(refined) == 2 and all(c["status"] == "done" and c["requests"] > 0 for c in refined)
