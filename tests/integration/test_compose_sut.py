"""The shop as Docker Compose on a SUT host (a namespace with sshd and dockerd), driven over SSH by `farm run`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import farm
from tests.integration.sut import SutHost, base_image_tarball, sut_host

pytestmark = [pytest.mark.integration]
__all__ = ["base_image_tarball"]

SWEEP = """
name: {name}
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [{caches}]
  instances: [{instances}]
  users: [2]
load: {{spawn_rate: 10, duration: 2s, warmup: 1s}}
sut: {{hosts: [sutA]}}
"""


@pytest.fixture(scope="module")
def sut(base_image_tarball: Path) -> Iterator[SutHost]:
    with sut_host(base_image_tarball) as host:
        yield host


def remote_root(sut: SutHost) -> str:
    """This SUT host's own upload folder (it vanishes with the host; the box's /tmp is shared by every test)."""
    return str(sut.root / "work")


def hosts_file(sut: SutHost, path: Path, **kwargs: str) -> Path:
    return sut.hosts_file(path, workdir=remote_root(sut), **kwargs)


def torn_down(sut: SutHost, timeout: float = 60.0) -> None:
    """Wait until the host runs no project: a sweep's last cell is stored before its group's teardown ends."""
    import time

    deadline = time.monotonic() + timeout
    while sut.docker("ps", "-q", "--filter", "label=com.docker.compose.project").stdout.split():
        assert time.monotonic() < deadline, "the last group was never torn down"
        time.sleep(0.5)


def statuses(db: Path, name: str) -> list[str]:
    """The status of each cell of sweep ``name`` in a SQLite store, read directly (cheap enough to poll often)."""
    import sqlite3

    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        return [status for (status,) in conn.execute(
            "SELECT c.status FROM cells c JOIN sweeps s ON s.id = c.sweep_id WHERE s.name = ?", (name,))]


def leftovers(sut: SutHost) -> dict[str, list[str]]:
    """What a deployment could leave on the host: containers, networks, volumes, uploaded folders."""
    found = {kind: sut.docker(*argv).stdout.split() for kind, argv in (
        ("containers", ("ps", "-aq")), ("volumes", ("volume", "ls", "-q")),
        ("networks", ("network", "ls", "--filter", "type=custom", "-q")))}
    listing = __import__("subprocess").run(sut.ssh_command(f"ls -A {remote_root(sut)} 2>/dev/null || true"),
                                          capture_output=True, text=True, timeout=30)
    found["uploads"] = [n for n in listing.stdout.split() if n != "build"]
    return found


def test_farm_run_provisions_the_shop_as_compose_on_the_sut_host_and_leaves_nothing(workdir: Path,
                                                                                   sut: SutHost) -> None:
    # Given a hosts file naming the SUT host and a sweep that runs its stack there: both architectures, with and
    # without the shared cache (its Redis service), 3 replicas each (1 instance: the generator-on-its-own-host test)
    # but microservices' catalog, scaled on its own to 2 (the monolith ignores that key)
    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    sweep = workdir / "remote.yaml"
    sweep.write_text(SWEEP.format(name="remote", caches="none, shared", instances="3").replace(
        "  users: [2]", "  replicas.catalog: [2]\n  users: [2]"))
    # When the sweep runs from this machine (the generator)
    result = farm("run", str(sweep), cwd=workdir, env={"FARM_HOSTS_FILE": str(hosts)}, timeout=900)
    # Then every cell is done, recording both hosts, the SUT host's fingerprint and its CPU
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    cells = json.loads(farm("results", "remote", "-f", "json", cwd=workdir).stdout)
    assert len(cells) == 4
    for cell in cells:
        assert cell["status"] == "done" and cell["requests"] > 0 and cell["failures"] == 0, \
            {k: cell.get(k) for k in ("params", "requests", "failures", "unfinished_requests", "warnings", "error")}
        assert cell["sut_host"] == "sutA" and cell["host"] != "sutA"
        assert cell["sut_cpu_pct"] is not None and cell["sut_services"], cell
    # And with 3 instances, each replica was reset and read: the metrics list every replica of every service
    three = [c for c in cells if c["params"]["instances"] == 3 and c["params"]["architecture"] == "monolith"]
    assert {name.rsplit("-", 1)[-1] for name in three[0]["sut_services"] if "-app-" in name} == {"1", "2", "3"}
    # And the SUT's CPU was measured per container: the app replicas that served the load used some
    apps = {n: s for n, s in three[0]["sut_services"].items() if "-app-" in n}
    assert all(s["cpu_s"] is not None and s["cpu_s"] > 0 for s in apps.values()), apps
    # And microservices ran `--scale` per service: 2 catalog containers, 3 of every other scalable service
    micro = next(c for c in cells if c["params"]["architecture"] == "microservices")
    replicas = {role: sum(f"-{role}-" in name for name in micro["sut_services"])
                for role in ("catalog", "pricing", "cart", "gateway")}
    assert replicas == {"catalog": 2, "pricing": 3, "cart": 3, "gateway": 3}, micro["sut_services"]
    # And each cell's cost is declared from those replicas (cores) and measured from the containers' cgroups
    assert micro["cost"] == 2 + 3 * 3 and three[0]["cost"] == 3 * 4
    assert micro["cost_breakdown"]["catalog"]["replicas"] == 2 and micro["cpu_ms_per_request"] > 0, micro
    assert micro["cost_breakdown"]["catalog"]["cpu_ms_per_request"] > 0, micro["cost_breakdown"]
    # And nothing is left on the SUT host
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}


def test_farm_stack_up_on_a_sut_host_serves_each_replica_and_stack_down_removes_it(workdir: Path,
                                                                                  sut: SutHost) -> None:
    import urllib.error
    import urllib.request

    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    env = {"FARM_HOSTS_FILE": str(hosts)}
    # When the shop is brought up by hand on the SUT host with 3 instances
    up = farm("stack", "up", "shop", "--sut", "sutA", "--instances", "3", "--name", "byhand", cwd=workdir, env=env,
              timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr
    # Then its entry answers through the load balancer, from here
    url = up.stdout.split(" is up at ")[1].split()[0]
    with urllib.request.urlopen(f"{url}/products/7", timeout=5) as resp:
        assert resp.status == 200
    assert len(sut.docker("ps", "-q", "--filter", "label=com.docker.compose.project=byhand").stdout.split()) == 4
    # And every published port listens on the host's lab address (the one the farm reached it by), none on all
    published = [port for line in sut.docker("ps", "--format", "{{.Ports}}", "--filter",
                                             "label=com.docker.compose.project=byhand").stdout.splitlines()
                 for port in line.split(", ") if "->" in port]
    assert len(published) == 4, published
    assert all(port.startswith(f"{sut.address}:") for port in published), published
    # And reset and metrics answer only the farm's token: refused without it, directly and through the balancer
    instance = sut.docker("port", "byhand-app-1", "8080").stdout.split()[0]
    for base in (f"http://{instance}", url):
        for method, path in (("GET", "/metrics"), ("POST", "/admin/reset")):
            request = urllib.request.Request(f"{base}{path}", method=method, data=b"" if method == "POST" else None)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=5)
            assert refused.value.code == 403, (base, path)
    # And it holds the SUT host's lease: another deployment by hand (or a group) waits until it is taken down
    second = farm("stack", "up", "shop", "--sut", "sutA", "--name", "other", cwd=workdir, env=env, timeout=120)
    assert second.returncode == 1 and "SUT host sutA is in use by manual byhand" in second.stderr, second.stderr
    # And `farm stack down` removes it from the host
    down = farm("stack", "down", "byhand", cwd=workdir, env=env, timeout=300)
    assert down.returncode == 0 and "removed 4 container(s) on sutA" in down.stdout, down.stdout + down.stderr
    from farm.store.leases import SutLeases
    from farm.store.repository import Store

    assert SutLeases(Store(f"sqlite:///{workdir / 'farm.db'}")).holder("sutA") is None
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}


def test_a_sut_host_whose_docker_does_not_answer_fails_the_group_at_once_with_a_clear_message(
        workdir: Path, sut: SutHost) -> None:
    import yaml

    # Given a hosts file whose Docker socket on the SUT host does not answer (as when dockerd is stopped)
    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    doc = yaml.safe_load(hosts.read_text())
    doc["sut_hosts"]["sutA"]["docker_host"] = "unix:///run/no-such-docker.sock"
    hosts.write_text(yaml.safe_dump(doc))
    sweep = workdir / "nodocker.yaml"
    sweep.write_text(SWEEP.format(name="nodocker", caches="none", instances="1").replace(
        "[monolith, microservices]", "[monolith]"))
    # When the sweep runs
    result = farm("run", str(sweep), cwd=workdir, env={"FARM_HOSTS_FILE": str(hosts)}, timeout=300)
    # Then it ends with exit 1, the cell failed at provision with a message naming the host and Docker (`docker
    # version` refused at once, not a deadline that ran out: that would say "did not end within")
    assert result.returncode == 1, result.stdout + result.stderr
    [cell] = json.loads(farm("results", "nodocker", "-f", "json", cwd=workdir).stdout)
    assert cell["status"] == "failed" and cell["error"]["stage"] == "provision", cell
    assert "Docker on sutA does not answer" in cell["error"]["message"], cell
    assert "Docker on sutA does not answer" in result.stdout + result.stderr


def test_farm_submit_and_a_worker_killed_mid_cell_its_next_start_removes_the_remote_deployment(
        workdir: Path, sut: SutHost) -> None:
    import time

    from tests.integration.lab import Host, Redis, Worker

    # Given a lab: Redis with a password, a store, one generator worker that knows the SUT host
    redis = Redis(workdir / "redis", []).start()
    hosts = hosts_file(sut, workdir / "farm-hosts.yaml")
    env = {"FARM_BROKER_URL": redis.url(), "FARM_DATABASE_URL": f"sqlite:///{workdir / 'lab.db'}",
           "FARM_HOSTS_FILE": str(hosts), "FARM_LEASE_S": "6", "FARM_REAP_INTERVAL_S": "1"}
    worker = Worker(Host("gen1", None, "127.0.0.1"), env, workdir).start()
    try:
        sweep = workdir / "killed.yaml"
        sweep.write_text(SWEEP.format(name="killed", caches="none", instances="2").replace(
            "[monolith, microservices]", "[monolith]").replace("users: [2]", "users: [2, 3]").replace(
            "duration: 2s", "duration: 4s"))
        submitted = farm("submit", str(sweep), cwd=workdir, env=env)
        assert submitted.returncode == 0, submitted.stderr
        # When the worker dies at once in the middle of a cell (its compose project stays on the SUT host)
        deadline = time.monotonic() + 240
        while "running" not in statuses(workdir / "lab.db", "killed"):
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1)
        worker.kill9()
        project = ["ps", "-q", "--filter", "label=com.docker.compose.project"]
        assert sut.docker(*project).stdout.split(), "the killed worker's stack should still be on the host"
        # And it starts again
        worker.start()
        # Then its start-up removes the dead worker's remote deployment, and the sweep completes
        deadline = time.monotonic() + 300
        while set(statuses(workdir / "lab.db", "killed")) != {"done"}:
            assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
            time.sleep(0.5)
        cells = json.loads(farm("results", "killed", "-f", "json", cwd=workdir, env=env).stdout)
        assert cells and all(c["status"] == "done" for c in cells), cells
        assert "removed 1 deployment(s) a dead worker left on SUT hosts" in worker.log.read_text()
        assert all(c["sut_host"] == "sutA" for c in cells)
        torn_down(sut)
    finally:
        worker.stop()
        redis.stop()
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}


def test_farm_hosts_prepare_imports_the_base_image_once_and_then_leaves_it(workdir: Path, sut: SutHost) -> None:
    from tests.integration.sut import base_image_cache

    env = {"FARM_HOSTS_FILE": str(hosts_file(sut, workdir / "farm-hosts.yaml")),
           "FARM_IMAGE_CACHE_DIR": str(base_image_cache())}
    # Given a host whose base image is gone (untagged)
    assert sut.docker("image", "rm", "-f", "loadfarm/base:bookworm").returncode == 0
    # When it is prepared, then prepared again
    first = farm("hosts", "prepare", "sutA", cwd=workdir, env=env, timeout=600)
    second = farm("hosts", "prepare", "sutA", cwd=workdir, env=env, timeout=600)
    # Then the image is imported once, from the tarball built here, and is current afterwards
    assert first.returncode == 0 and "sutA: base image imported" in first.stdout, first.stdout + first.stderr
    assert second.returncode == 0 and "sutA: base image up to date" in second.stdout, second.stdout + second.stderr
    ran = sut.docker("run", "--rm", "loadfarm/base:bookworm", "python3", "-c", "import aiohttp, redis")
    assert ran.returncode == 0, ran.stderr


@pytest.mark.usefixtures("nginx_available")
def test_the_compose_recipe_gives_the_same_answers_as_the_process_recipe_field_for_field(
        tmp_path: Path, sut: SutHost) -> None:
    import time

    from farm.remote.hosts import load_hosts
    from farm.remote.shell import ssh_connector
    from farm.stacks.compose import ComposeDriver
    from tests.integration.test_shop_stack import MANIFEST, session, shop

    host = load_hosts(hosts_file(sut, tmp_path / "farm-hosts.yaml"))["sutA"]
    driver = ComposeDriver(host, tmp_path / "remote", ssh_connector(10.0))
    for arch in ("monolith", "microservices"):
        params = {**MANIFEST.defaults(), "architecture": arch, "cache": "shared", "instances": 2}
        # Given the shop as processes here, and as compose on the SUT host, with the same parameters
        with shop(tmp_path, **{k: v for k, v in params.items() if k in ("architecture", "cache", "instances")}) as (
                _local, here):
            local_answers = session(here.entry_url)
        deployment = driver.up(MANIFEST, params, f"same-{arch}")
        try:
            driver.ready(deployment, time.monotonic() + 60)
            assert driver.check_instances(deployment) == (2 if arch == "monolith" else 8)
            remote_answers = session(deployment.entry_url)
        finally:
            driver.down(deployment)
        # Then every answer is the same, field for field
        assert remote_answers == local_answers, arch
    assert leftovers(sut)["containers"] == []


def test_farm_submit_runs_with_the_generator_on_its_own_host_and_the_stack_on_the_sut_host(
        workdir: Path, sut: SutHost) -> None:
    import time

    from tests.integration.lab import Redis, Worker, namespaces

    with namespaces(1) as [generator]:
        # Given a generator host (its own namespace) linked to the SUT host, and the controller (Redis, store) here
        address = sut.connect(str(generator.netns))
        redis = Redis(workdir / "redis", [generator.address]).start()
        store = f"sqlite:///{workdir / 'lab.db'}"
        env = {"FARM_DATABASE_URL": store, "FARM_LEASE_S": "10",
               "FARM_HOSTS_FILE": str(hosts_file(sut, workdir / "gen-hosts.yaml", address=address))}
        worker = Worker(generator, {**env, "FARM_BROKER_URL": redis.url(generator.address)}, workdir).start()
        try:
            sweep = workdir / "apart.yaml"
            sweep.write_text(SWEEP.format(name="apart", caches="shared", instances="1"))
            # When a sweep is submitted from the controller
            submitted = farm("submit", str(sweep), cwd=workdir, env={**env, "FARM_BROKER_URL": redis.url()})
            assert submitted.returncode == 0, submitted.stderr
            deadline = time.monotonic() + 300
            while not statuses(workdir / "lab.db", "apart") or not set(statuses(workdir / "lab.db", "apart")) <= {
                    "done", "failed"}:
                assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
                time.sleep(0.5)
            cells = json.loads(farm("results", "apart", "-f", "json", cwd=workdir, env=env).stdout)
            torn_down(sut)
        finally:
            worker.stop()
            redis.stop()
    # Then every cell ran with the load from the generator's host and the stack on the SUT host
    assert [(c["status"], c["host"], c["sut_host"]) for c in cells] == [("done", "lab1", "sutA")] * 2, cells
    assert leftovers(sut) == {"containers": [], "volumes": [], "networks": [], "uploads": []}
