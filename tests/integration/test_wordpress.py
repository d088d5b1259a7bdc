"""The classic WordPress stack as real processes from Debian packages: MariaDB, php-fpm, nginx, Redis.

One deployment per cache mode (1 or 3 instances): `/` through the balancer and each instance, the object cache's
counters, what a reset empties, comments across instances, nothing left after teardown; then a short sweep through
`farm run` (no cache and Redis) at 4x the php-fpm pool with no think time, which also covers the stack without a
cache.
"""

from __future__ import annotations

import glob
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from farm.stacks.driver import Deployment
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import Scalar, load_manifest
from tests.conftest import ROOT, farm, stray_processes
from tests.integration.conftest import require
from tests.integration.readers import assert_every_user_answered, concurrent_readers

pytestmark = pytest.mark.integration
MANIFEST = load_manifest(ROOT / "stacks" / "wordpress")
READER = {"Cookie": "comment_author_farm=Reader"}  # a reader who commented: the page cache lets them through
PACKAGES = "apt-get install mariadb-server php-fpm php-mysql php-apcu php-redis php-cli nginx-light redis-server " \
           "wordpress wordpress-theme-twentytwentythree"


@pytest.fixture(scope="module", autouse=True)
def debian_packages() -> None:
    """The stack needs Debian's packages; CI installs them (a laptop without them skips)."""
    for program in ("mariadbd", "mariadb", "php", "nginx", "redis-server"):
        require(program, PACKAGES)
    for path, what in (("/usr/sbin/php-fpm*", "php-fpm"), ("/usr/share/wordpress/wp-settings.php", "wordpress"),
                       ("/usr/share/wordpress/wp-content/themes/twentytwentythree", "its theme")):
        if not glob.glob(path):
            message = f"{what} is not installed ({PACKAGES})"
            pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


@contextmanager
def wordpress(tmp_path: Path, **params: Scalar) -> Iterator[tuple[LocalDriver, Deployment]]:
    driver = LocalDriver(tmp_path / "deployments")
    deployment = driver.up(MANIFEST, {**MANIFEST.defaults(), "posts": 60, **params}, "wp")
    try:
        driver.ready(deployment, time.monotonic() + 60)
        driver.check_instances(deployment)
        yield driver, deployment
    finally:
        driver.down(deployment)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=20) as resp:
        return resp.status, resp.read().decode(), dict(resp.headers)


def title(url: str) -> str:
    status, body, _ = get(url)
    assert status == 200, url
    return body.split("<title>", 1)[1].split("</title>", 1)[0]


def counters(driver: LocalDriver, deployment: Deployment) -> list[dict[str, Any]]:
    """Each instance's metrics document, in replica order."""
    return [{"requests": d["requests"], **d["cache"]} for d in driver.metrics(deployment).raw]


def comment(base: str, post: int, text: str) -> int:
    data = urllib.parse.urlencode({"comment_post_ID": post, "author": "Tester", "email": "t@example.invalid",
                                   "url": "", "comment": text}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/wp-comments-post.php", data=data), timeout=20) as r:
        return int(r.status)


def serves_the_same_site(deployment: Deployment) -> None:
    """`/` answers 200 through the balancer and each instance, and every one shows the same seeded post."""
    bases = [deployment.entry_url] + [e.url for e in deployment.instances]
    assert {get(base + "/")[0] for base in bases} == {200}
    titles = {title(f"{base}/?p=17") for base in bases}
    assert len(titles) == 1 and next(iter(titles)).startswith("Post 17: ")


def first_views(deployment: Deployment, driver: LocalDriver, path: str) -> list[dict[str, Any]]:
    """After a reset, `path` once on each instance in turn: each one's counters after its first view."""
    driver.reset(deployment)
    for endpoint in deployment.instances:
        get(endpoint.url + path)
    return counters(driver, deployment)


def test_each_cache_mode_serves_counts_and_resets(tmp_path: Path) -> None:
    # --- APCu in each of three instances: each one's cache starts cold, hits rise on a second view
    # (no cache: the short sweep below)
    with wordpress(tmp_path, cache="local", instances=3) as (driver, deployment):
        serves_the_same_site(deployment)
        assert (deployment.workdir / "db" / "mysql").is_dir()  # its own datadir, not /var/lib/mysql
        # only the farm, with this deployment's token, resets or reads the counters: directly and via the balancer
        from tests.integration.test_reset_token import status

        for base in (deployment.instances[0].url, deployment.entry_url):
            assert status(f"{base}/farm/metrics", "GET") == status(f"{base}/farm/reset", "POST") == 403, base
            assert status(f"{base}/farm-endpoint.php", "GET") in (403, 404), base
            assert status(f"{base}/farm/metrics", "GET", deployment.token) == 200, base
        views = first_views(deployment, driver, "/?p=21")
        assert all(v["requests"] == 1 and v["misses"] > 0 for v in views)
        assert all(v["hits"] < v["misses"] for v in views)  # what instance 0 cached, instance 1 has not
        get(deployment.instances[1].url + "/?p=21")
        again = counters(driver, deployment)[1]
        assert again["hits"] - views[1]["hits"] > again["misses"] - views[1]["misses"]
        # a comment through instance 0 shows there; instance 1 keeps serving its own (now stale) copy
        assert comment(deployment.instances[0].url, 21, "Seen by instance 0 only") == 200
        assert "Seen by instance 0 only" in get(deployment.instances[0].url + "/?p=21")[1]
        assert "Seen by instance 0 only" not in get(deployment.instances[1].url + "/?p=21")[1]
        # a reset empties every instance's cache and counters
        driver.reset(deployment)
        assert counters(driver, deployment) == [{"requests": 0, "mode": "local", "hits": 0, "misses": 0}] * 3

    # --- one Redis for three instances: what one instance cached, the next one finds; comments show everywhere
    with wordpress(tmp_path, cache="shared", instances=3) as (driver, deployment):
        serves_the_same_site(deployment)
        views = first_views(deployment, driver, "/?p=21")
        assert views[0]["hits"] < views[0]["misses"]
        assert views[1]["hits"] > views[1]["misses"] and views[2]["hits"] > views[2]["misses"]
        metrics = driver.metrics(deployment)
        assert metrics.cache_hits is not None and metrics.cache_hits == sum(v["hits"] for v in views) > 0
        # a comment posted through one instance invalidates the cached page data of every instance
        assert comment(deployment.instances[0].url, 21, "A comment every instance must show") == 200
        assert all("A comment every instance must show" in get(e.url + "/?p=21")[1] for e in deployment.instances)
        # a reset flushes Redis: the first view after it misses again
        views = first_views(deployment, driver, "/?p=21")
        assert views[0]["hits"] < views[0]["misses"]

    # --- the balancer's page cache: a repeated page is a hit, a reset empties it
    with wordpress(tmp_path, cache="page", instances=1, php_workers=4) as (driver, deployment):
        serves_the_same_site(deployment)
        driver.reset(deployment)
        statuses = [get(deployment.entry_url + "/?p=5")[2].get("X-Cache") for _ in range(3)]
        assert statuses == ["MISS", "HIT", "HIT"]
        metrics = driver.metrics(deployment)
        assert (metrics.cache_hits, metrics.cache_misses) == (2, 1)
        # WordPress rendered the page once; the balancer's two hits count as the instance's requests too, so the
        # stack's count agrees with the client's
        assert counters(driver, deployment)[0]["requests"] == 3
        driver.reset(deployment)
        assert get(deployment.entry_url + "/?p=5")[2].get("X-Cache") == "MISS"
        # 16 readers at once, no think time, on this one instance's 4 php-fpm children, through the balancer (a
        # comment cookie passes the page cache: every request reaches PHP): every reader is answered, again and
        # again, and none waits (kept-alive FastCGI connections bound the 4 children to 4 readers; the other 12
        # waited for nginx's 504 after 60 s: here, for the client's 15 s)
        assert get(deployment.entry_url + "/", READER)[2].get("X-Cache") == "BYPASS"
        readers = concurrent_readers(deployment.entry_url + "/", clients=16, seconds=3, timeout=15, headers=READER)
        assert all(set(r) == {"200"} for r in readers), readers

    # And nothing of any deployment is left running
    assert stray_processes(str(tmp_path)) == []


# 12 s windows: several response times (at 16 users with no think time, one takes 16 / throughput: 1-4 s on a busy
# 2-core machine), so that Little's law holds over the window and no answering user completes nothing in it
SWEEP = """
name: wp-tiny
stack: {stack}
matrix:
  cache: [none, shared]
  users: [16]
  php_workers: [4]
  posts: [70]   # post i is dated i × 5.5 days into 2024: 70 posts fill every month (/?m=2024MM: no 404)
load: {{spawn_rate: 16, duration: 12s, warmup: 3s, locustfile: {locustfile}}}
"""


def test_a_short_sweep_at_four_times_the_php_workers_answers_every_user(workdir: Path) -> None:
    # Given a sweep over both cache extremes on the process recipe: one instance of 4 php-fpm children, 16 users of
    # the stack's own scenario with no think time (4x the pool: kept-alive FastCGI connections left 12 of them
    # stuck, their requests missing from the window)
    locustfile = ROOT / "tests" / "locustfiles" / "zero_think_wordpress.py"
    (workdir / "sweep.yaml").write_text(SWEEP.format(stack=ROOT / "stacks" / "wordpress", locustfile=locustfile))
    # When it runs through the farm
    run = farm("run", "sweep.yaml", cwd=workdir, timeout=240)
    # Then every cell is done, every user had answers all along (none stalled, Little's law holds), nothing is
    # unfinished and nothing failed; only the shared cache has a hit ratio; the stack counts its requests in both
    assert run.returncode == 0, run.stdout + run.stderr
    cells = json.loads(farm("results", "wp-tiny", "--format", "json", cwd=workdir).stdout)
    assert sorted((c["params"]["cache"], c["params"]["users"]) for c in cells) == [("none", 16), ("shared", 16)]
    for cell in cells:
        assert_every_user_answered(cell)
        assert cell["server_requests"] > 0 and cell["server_requests_services"] == "web"
        if cell["params"]["cache"] == "none":
            assert cell["cache_hit_ratio"] is None
        else:
            assert 0 < cell["cache_hit_ratio"] <= 1
    assert stray_processes(str(workdir)) == []
