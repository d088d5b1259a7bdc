"""The WordPress stack's compose recipe on a SUT host (a namespace with sshd and dockerd), driven over SSH.

Images come from Debian packages through the offline base image (the fixture imports it): nothing is pulled.
3 instances with the shared Redis through the driver: the one-shot setup, `/` through the balancer and on each
replica, each replica knowing its own index, the object cache's counters, what a reset empties, a comment every
replica shows, 16 readers at once on one replica and through the balancer; 1 instance without a cache at 4x its
php-fpm pool with no think time through `farm run`, started in the background at once (the two
deployments share the host under their own project names: less wall time); nothing left on the host after either.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from farm.remote.hosts import load_hosts
from farm.remote.shell import ssh_connector
from farm.stacks.compose import ComposeDriver
from farm.stacks.driver import Deployment
from farm.stacks.manifest import Scalar, load_manifest
from tests.conftest import FARM, ROOT, farm
from tests.integration.readers import assert_every_user_answered, concurrent_readers
from tests.integration.sut import SutHost, base_image_tarball, sut_host
from tests.integration.test_compose_sut import hosts_file, leftovers, torn_down

pytestmark = [pytest.mark.integration]
__all__ = ["base_image_tarball"]
MANIFEST = load_manifest(ROOT / "stacks" / "wordpress")
# WordPress's first pages (opcache cold) on a box shared with other tests' stacks can take tens of seconds
READY_S = 120.0


@pytest.fixture(scope="module")
def sut(base_image_tarball: Path) -> Iterator[SutHost]:
    with sut_host(base_image_tarball) as host:
        yield host


# 12 s windows: several response times (at 16 users with no think time, one takes 16 / throughput: 1-4 s on a busy
# 2-core machine), so that Little's law holds over the window and no answering user completes nothing in it
SWEEP = """
name: wp-compose
stack: {stack}
matrix:
  cache: [none]
  instances: [1]
  users: [16]
  php_workers: [4]
  posts: [70]   # post i is dated i × 5.5 days into 2024: 70 posts fill every month (/?m=2024MM: no 404)
load: {{spawn_rate: 16, duration: 12s, warmup: 3s, locustfile: {locustfile}}}
sut: {{hosts: [sutA], driver: compose}}
"""


@dataclass
class SweepRun:
    """A `farm run` going on in the background, in its own working folder."""

    workdir: Path
    process: subprocess.Popen[str]

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        """Wait for it; its exit status and output."""
        code = self.process.wait(timeout)
        return code, (self.workdir / "run.log").read_text()


def store(workdir: Path) -> dict[str, str]:
    """The sweep's own store, in its folder."""
    return {"FARM_DATABASE_URL": f"sqlite:///{workdir / 'farm.db'}"}


@pytest.fixture(scope="module")
def sweep_run(sut: SutHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SweepRun]:
    """`farm run` of a one-cell sweep with the stack as compose on the SUT host, started at once."""
    workdir = tmp_path_factory.mktemp("sweep")
    locustfile = ROOT / "tests" / "locustfiles" / "zero_think_wordpress.py"
    (workdir / "sweep.yaml").write_text(SWEEP.format(stack=ROOT / "stacks" / "wordpress", locustfile=locustfile))
    env = {**os.environ, **store(workdir), "FARM_HOSTS_FILE": str(hosts_file(sut, workdir / "farm-hosts.yaml")),
           "FARM_READY_TIMEOUT_S": str(READY_S)}
    with open(workdir / "run.log", "w") as log:
        process = subprocess.Popen([*FARM, "run", "sweep.yaml"], cwd=workdir, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        yield SweepRun(workdir, process)
    finally:
        if process.poll() is None:  # the module ended without waiting for it (a test selected alone, a failure)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


@contextmanager
def wordpress(tmp_path: Path, sut: SutHost, name: str, **params: Scalar) -> Iterator[tuple[ComposeDriver,
                                                                                              Deployment]]:
    host = load_hosts(hosts_file(sut, tmp_path / "farm-hosts.yaml"))["sutA"]
    driver = ComposeDriver(host, tmp_path / "deployments", ssh_connector(10.0), up_timeout_s=150)
    deployment = driver.up(MANIFEST, {**MANIFEST.defaults(), "posts": 40, **params}, name)
    try:
        driver.ready(deployment, time.monotonic() + READY_S)
        yield driver, deployment
    finally:
        driver.down(deployment)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=20) as resp:
        return resp.status, resp.read().decode()


def counters(driver: ComposeDriver, deployment: Deployment) -> list[dict[str, Any]]:
    """Each replica's metrics document, in replica order."""
    return [{"instance": d["instance"], "requests": d["requests"], **d["cache"]}
            for d in driver.metrics(deployment).raw]


def comment(base: str, post: int, text: str) -> int:
    data = urllib.parse.urlencode({"comment_post_ID": post, "author": "Tester", "email": "t@example.invalid",
                                   "url": "", "comment": text}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{base}/wp-comments-post.php", data=data), timeout=20) as r:
        return int(r.status)


def project_leftovers(sut: SutHost, project: str) -> list[str]:
    """Containers, volumes, networks and the uploaded folder of one compose project still on the host."""
    label = f"label=com.docker.compose.project={project}"
    found = [*sut.docker("ps", "-aq", "--filter", label).stdout.split(),
             *sut.docker("volume", "ls", "-q", "--filter", label).stdout.split(),
             *sut.docker("network", "ls", "-q", "--filter", label).stdout.split()]
    return found + [n for n in leftovers(sut)["uploads"] if n == project]


def test_three_replicas_with_the_shared_redis_serve_count_reset_and_leave_nothing(
        tmp_path: Path, sut: SutHost, sweep_run: SweepRun) -> None:
    # Given the module's farm run over (its group, claiming the SUT host, removes every farm-labelled project that no
    # live lease owns, as this hand-made deployment would be: #16 item 3), and then WordPress as compose on the SUT
    # host: 3 replicas of `wordpress` sharing one Redis
    sweep_run.finish()
    with wordpress(tmp_path, sut, "wpshared", cache="shared", instances=3, php_workers=4) as (driver, deployment):
        # Then the setup ran once and exited 0 before the replicas started, and the site it seeded is served
        # through the balancer and by each replica, each knowing which replica it is
        assert driver.check_instances(deployment) == 3
        replicas = [e for e in deployment.endpoints if e.service == "wordpress"]
        assert [e.replica for e in replicas] == [0, 1, 2]
        setup = sut.docker("ps", "-a", "--filter", "label=com.docker.compose.project=wpshared", "--filter",
                           "label=com.docker.compose.service=setup", "--format", "{{.Status}}").stdout.split("\n")
        assert len(setup) == 2 and setup[0].startswith("Exited (0)"), setup
        status, home = get(deployment.entry_url + "/")
        assert status == 200 and "Post 40:" in home
        for endpoint in replicas:
            status, body = get(endpoint.url + "/?p=7")
            assert status == 200 and "Post 7:" in body, endpoint
        assert [c["instance"] for c in counters(driver, deployment)] == [0, 1, 2]
        # When the caches are reset and the home page is read through the balancer (round-robin: every replica)
        driver.reset(deployment)
        assert [(c["hits"], c["misses"]) for c in counters(driver, deployment)] == [(0, 0)] * 3
        for _ in range(6):
            assert get(deployment.entry_url + "/")[0] == 200
        # Then every replica served some, and the shared cache answered: later replicas hit what the first stored
        after = counters(driver, deployment)
        assert all(c["mode"] == "shared" and c["requests"] >= 1 for c in after), after
        assert sum(c["hits"] for c in after) > sum(c["misses"] for c in after) > 0, after
        # And a comment posted through one replica shows on every replica (one database, one shared cache)
        assert comment(replicas[0].url, 7, "seen by every replica") in (200, 302)
        for endpoint in replicas:
            assert "seen by every replica" in get(endpoint.url + "/?p=7")[1], endpoint
        # And a reset empties the shared cache: the next page view misses again
        driver.reset(deployment)
        assert sum(c["hits"] + c["misses"] for c in counters(driver, deployment)) == 0
        get(replicas[1].url + "/")
        assert counters(driver, deployment)[1]["misses"] > 0
        # And 16 readers at once with no think time, on one replica's 4 php-fpm children (4x its pool) and then
        # through the balancer: every reader is answered every time (kept-alive FastCGI connections bound the
        # children to 4 readers; the rest waited for nginx's 504 after 60 s: here, for the client's 15 s)
        for url in (replicas[0].url + "/", deployment.entry_url + "/"):
            readers = concurrent_readers(url, clients=16, seconds=3, timeout=15)
            assert all(set(r) == {"200"} for r in readers), (url, readers)
    # Then nothing of it is left on the host: no container, network, volume or uploaded folder
    assert project_leftovers(sut, "wpshared") == []



def test_farm_run_measures_one_replica_without_a_cache_on_the_sut_host(sweep_run: SweepRun, sut: SutHost) -> None:
    # Given a sweep that runs the WordPress stack as compose on the SUT host, one replica of 4 php-fpm children, no
    # object cache, 16 users of the stack's own scenario with no think time (4x the pool)
    # When it runs through the farm (started with the module)
    code, output = sweep_run.finish()
    # Then the cell is done on the SUT host, every user had answers all along (none stalled, Little's law holds),
    # nothing is unfinished or failed, the stack counted requests too, and "no cache" is read as no hit ratio
    assert code == 0, output[-3000:]
    [cell] = json.loads(farm("results", "wp-compose", "--format", "json", cwd=sweep_run.workdir,
                                  env=store(sweep_run.workdir)).stdout)
    assert_every_user_answered(cell)
    assert cell["sut_host"] == "sutA" and cell["cache_hit_ratio"] is None, cell
    # (counted, not compared: with a handful of requests in a 3 s window on a busy box, one in flight at either
    # bound is a mismatch of many percent)
    assert cell["server_requests"] > 0, cell
    assert any("-wordpress-1" in name for name in cell["sut_services"]), cell["sut_services"]
    # And nothing is left on the host
    torn_down(sut)
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}
