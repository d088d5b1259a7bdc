"""The reference shop as real processes behind real nginx: one API, two architectures, caches that work."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from farm.stacks.driver import Deployment
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from tests.conftest import ROOT, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]
MANIFEST = load_manifest(ROOT / "stacks" / "shop")


@contextmanager
def shop(tmp_path: Path, **params: object) -> Iterator[tuple[LocalDriver, Deployment]]:
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


def hit_ratio(tmp_path: Path, keys: int = 20, **params: object) -> float | None:
    rnd = random.Random(1)
    with shop(tmp_path, **params) as (driver, deployment):
        driver.reset(deployment)
        for _ in range(200):  # a bounded loop over a few hot products
            get(f"{deployment.entry_url}/products/{rnd.randint(1, keys)}")
        metrics = driver.metrics(deployment)
    if metrics.cache_hits is None or metrics.cache_misses is None:
        return None
    return metrics.cache_hits / (metrics.cache_hits + metrics.cache_misses)


@pytest.mark.parametrize("architecture", ["monolith", "microservices"])
def test_the_hit_ratio_from_metrics_rises_with_the_cache_on(tmp_path: Path, architecture: str) -> None:
    assert hit_ratio(tmp_path, architecture=architecture, cache="none") is None
    local = hit_ratio(tmp_path, architecture=architecture, cache="local")
    shared = hit_ratio(tmp_path, architecture=architecture, cache="shared", instances=2)
    assert local is not None and local >= 0.85  # 20 keys, 200 lookups: only the first of each misses
    assert shared is not None and shared >= 0.85


def test_a_local_cache_split_over_instances_hits_less_than_a_shared_one(tmp_path: Path) -> None:
    # 40 products over 4 instances that each hold 10 pages: every instance sees (and misses) every key
    local = hit_ratio(tmp_path, keys=40, architecture="monolith", cache="local", instances=4, cache_size=10)
    shared = hit_ratio(tmp_path, keys=40, architecture="monolith", cache="shared", instances=4, cache_size=10)
    assert local is not None and shared is not None
    assert shared > local + 0.3


def test_a_reset_empties_the_caches(tmp_path: Path) -> None:
    with shop(tmp_path, cache="local") as (driver, deployment):
        get(f"{deployment.entry_url}/products/5")
        get(f"{deployment.entry_url}/products/5")
        assert driver.metrics(deployment).cache_hits == 1
        driver.reset(deployment)
        get(f"{deployment.entry_url}/products/5")
        after = driver.metrics(deployment)
        assert (after.cache_hits, after.cache_misses) == (0, 1)
