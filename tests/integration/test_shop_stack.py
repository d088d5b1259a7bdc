"""The reference shop as real processes behind real nginx: one API, two architectures, caches that work."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from farm.stacks.driver import Deployment, StackMetrics
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import Scalar, load_manifest
from tests.conftest import ROOT, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]
MANIFEST = load_manifest(ROOT / "stacks" / "shop")


@contextmanager
def shop(tmp_path: Path, **params: Scalar) -> Iterator[tuple[LocalDriver, Deployment]]:
    driver = LocalDriver(tmp_path / "deployments")
    deployment = driver.up(MANIFEST, {**MANIFEST.defaults(), "instances": 1, **params}, "t")
    try:
        driver.ready(deployment, time.monotonic() + 30)
        driver.check_instances(deployment)
        yield driver, deployment
    finally:
        driver.down(deployment)


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def post(url: str, body: object = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def session(base: str) -> dict:
    """One shopper's visit: two products, the catalog, a cart and a checkout."""
    return {
        "product": get(f"{base}/products/17"),
        "other": get(f"{base}/products/1999"),
        "catalog": get(f"{base}/catalog?page=3"),
        "cart": post(f"{base}/cart/abc/items", {"product_id": 17, "qty": 2}),
        "checkout": post(f"{base}/checkout/abc"),
    }


def test_both_architectures_serve_the_same_api_with_the_same_answers(tmp_path: Path) -> None:
    # Given each architecture with two instances behind nginx
    answers = {}
    for arch in ("monolith", "microservices"):
        with shop(tmp_path, architecture=arch, instances=2) as (_driver, deployment):
            assert len(deployment.instances) == (2 if arch == "monolith" else 8)
            answers[arch] = session(deployment.entry_url)
    # Then every answer is the same, field for field
    assert answers["monolith"] == answers["microservices"]
    assert answers["monolith"]["checkout"]["total_cents"] == 2 * answers["monolith"]["product"]["cents"]
    assert len(answers["monolith"]["product"]["reviews"]) == 8
    # And nothing of either stack is left running
    assert stray_processes(str(tmp_path)) == []


def lookups(tmp_path: Path, keys: int = 20, pages: int = 200, **params: Scalar) -> StackMetrics:
    """The stack's metrics after ``pages`` product pages drawn from a few hot products."""
    rnd = random.Random(1)
    with shop(tmp_path, **params) as (driver, deployment):
        driver.reset(deployment)
        for _ in range(pages):  # a bounded loop over a few hot products
            get(f"{deployment.entry_url}/products/{rnd.randint(1, keys)}")
        return driver.metrics(deployment)


def hit_ratio(metrics: StackMetrics) -> float | None:
    if metrics.cache_hits is None or metrics.cache_misses is None:
        return None
    return metrics.cache_hits / (metrics.cache_hits + metrics.cache_misses)


def caching_processes(metrics: StackMetrics) -> int:
    """How many processes looked anything up in a cache (a monolith instance's workers are counted apart)."""
    return sum(1 for doc in metrics.raw for w in doc["workers"] if w["hits"] + w["misses"])


@pytest.mark.parametrize("architecture", ["monolith", "microservices"])
def test_the_hit_ratio_from_metrics_rises_with_the_cache_on(tmp_path: Path, architecture: str) -> None:
    assert hit_ratio(lookups(tmp_path, pages=20, architecture=architecture, cache="none")) is None
    local = lookups(tmp_path, architecture=architecture, cache="local")
    shared = lookups(tmp_path, architecture=architecture, cache="shared", instances=2)
    # A local cache is one LRU per process: only the first lookup of each of the 20 keys in each process misses
    # (a monolith instance's four workers, or microservices' catalog and pricing)
    assert local.cache_misses is not None and 0 < local.cache_misses <= 20 * caching_processes(local)
    assert (hit_ratio(local) or 0) >= 0.5
    # A shared cache misses each key once for all instances (once per service that caches it)
    assert shared.cache_misses is not None and shared.cache_misses <= 20 * (1 if architecture == "monolith" else 2)
    assert (hit_ratio(shared) or 0) >= 0.85


def test_a_local_cache_split_over_instances_hits_less_than_a_shared_one(tmp_path: Path) -> None:
    # 40 products over 4 instances that hold 10 pages each: every instance sees (and misses) every key (one
    # worker per instance: the split over instances is under test here, the split over workers below)
    local, shared = (hit_ratio(lookups(tmp_path, keys=40, architecture="monolith", cache=cache, instances=4,
                                       cache_size=10, monolith_processes=1)) for cache in ("local", "shared"))
    assert local is not None and shared is not None
    assert shared > local + 0.3


def test_the_workers_of_a_monolith_instance_share_its_carts_counters_and_resets(tmp_path: Path) -> None:
    # Given one monolith instance, by default four worker processes, with a local cache, behind nginx
    with shop(tmp_path, cache="local") as (driver, deployment):
        [instance] = deployment.instances
        assert get(instance.url + "/healthz")["processes"] == 4
        base = deployment.entry_url
        driver.reset(deployment)
        # When 60 items go into one cart, 8 checkouts are made and 60 product pages read, 8 at a time, through
        # the balancer (so nginx opens several connections to the instance, which the kernel spreads)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: post(f"{base}/cart/s1/items", {"product_id": 1 + i % 5, "qty": 1}), range(60)))
            list(pool.map(lambda i: post(f"{base}/cart/c{i}/items", {"product_id": 7, "qty": 1}), range(8)))
            orders = list(pool.map(lambda i: post(f"{base}/checkout/c{i}"), range(8)))
            list(pool.map(lambda _: get(f"{base}/products/5"), range(60)))
        cart = get(f"{base}/cart/s1")
        metrics = driver.metrics(deployment)
        [doc] = metrics.raw
        looked = {w["pid"] for w in doc["workers"] if w["hits"] + w["misses"]}
        # Then several workers served, and the cart holds every item whichever worker added it
        assert sum(1 for w in doc["workers"] if w["requests"]) >= 2
        assert len(cart["items"]) == 60
        assert cart["total_cents"] == sum(i["cents"] for i in cart["items"])
        # And each checkout is one order of one item, numbered without gaps across workers
        assert sorted(o["order"] for o in orders) == list(range(1, 9))
        assert {o["items"] for o in orders} == {1}
        # And the instance counts every request and every lookup once: each worker misses product 5 once
        assert doc["requests"] == 60 + 8 + 8 + 60 + 1
        assert doc["requests"] == sum(w["requests"] for w in doc["workers"])
        assert (metrics.cache_hits, metrics.cache_misses) == (60 - len(looked), len(looked))
        assert doc["cache"]["entries"] == len(looked)

        # When the instance is reset: one POST, which reaches one of its workers
        driver.reset(deployment)
        # Then its counters, its cache entries and its carts are empty
        after = driver.metrics(deployment)
        assert (after.cache_hits, after.cache_misses) == (0, 0)
        assert (after.raw[0]["requests"], after.raw[0]["cache"]["entries"]) == (0, 0)
        assert get(f"{base}/cart/s1")["items"] == []
        # And every worker's cache was emptied: each misses product 5 again, those that had it cached too
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: get(f"{base}/products/5"), range(60)))
        final = driver.metrics(deployment).raw[0]["workers"]
        again = {w["pid"]: w["misses"] for w in final if w["hits"] + w["misses"]}
        assert set(again.values()) == {1}
        assert len(looked & set(again)) >= 2  # at least one of them is not the worker that took the reset
        assert post(f"{base}/checkout/c0")["order"] == 1


def start_monolith(state: Path, processes: int) -> tuple[subprocess.Popen[bytes], str]:
    """One monolith instance as a bare process (no farm, no nginx), healthy; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(ROOT / "stacks/shop/app/shop.py"), "--role", "monolith",
                             "--port", str(port), "--processes", str(processes), "--state-dir", str(state)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(url + "/healthz")["status"] == "ok":
                return proc, url
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the instance never became healthy"
        time.sleep(0.1)


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running after up to 10 s (a zombie waiting for its reaper has stopped)."""
    deadline = time.monotonic() + 10
    while True:
        running = []
        for p in processes:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    running.append(p)
            except psutil.Error:
                continue
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


def test_a_monolith_instance_stops_whole_when_a_worker_dies_and_leaves_nothing_when_stopped(tmp_path: Path) -> None:
    # Given a monolith instance of three workers, its carts in a folder of its own
    proc, _url = start_monolith(tmp_path, 3)
    try:
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 3 and len(list(tmp_path.iterdir())) == 1
        # When one worker is killed
        workers[1].kill()
        # Then the instance stops with an error that says so, takes its other workers with it, and cleans up
        assert proc.wait(timeout=15) == 1
        assert b"exited with status -9: stopping the instance" in proc.stderr.read()  # type: ignore[union-attr]
        assert alive(workers) == []
        assert list(tmp_path.iterdir()) == []
    finally:
        proc.kill()
    # Given another instance: when it is asked to stop, it stops cleanly, every worker too, and cleans up
    proc, _url = start_monolith(tmp_path, 2)
    workers = psutil.Process(proc.pid).children()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert alive(workers) == []
    assert list(tmp_path.iterdir()) == []
