"""The SUT-host fixture for real: a namespace with dockerd, the offline base image, Compose v2 and sshd."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from farm.remote.baseimage import BASE_IMAGE, LABEL, tarball_key
from farm.remote.hosts import load_hosts
from farm.remote.ssh import SSHConnection
from tests.integration.lab import namespaces
from tests.integration.sut import (
    SutHost,
    SutHostError,
    SutHostFixture,
    base_image_tarball,
    box_snapshot,
    reap_stale_hosts,
    sut_host,
    sut_host_requirements,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("sut_host_requirements")]
__all__ = ["base_image_tarball", "sut_host_requirements"]  # session fixtures, shared with this module

COMPOSE = """
services:
  cache:
    image: loadfarm/base:bookworm
    command: ["redis-server", "--protected-mode", "no", "--save", ""]
    init: true
    healthcheck: {test: ["CMD", "redis-cli", "ping"], interval: 1s, retries: 30}
  web:
    build: {context: ./web, args: {BASE: loadfarm/base:bookworm}}
    image: lftest/web:1
    command: ["python3", "-m", "http.server", "8000", "--directory", "/srv"]
    init: true
    volumes: [data:/srv]
    depends_on: {cache: {condition: service_healthy}}
    healthcheck: {test: ["CMD", "curl", "-fsS", "http://127.0.0.1:8000/"], interval: 1s, retries: 30}
volumes:
  data: {}
"""

# The pattern every stack Dockerfile follows: a registry base by default, the offline base by build argument.
DOCKERFILE = """ARG BASE=python:3.12-slim
FROM ${BASE}
RUN python3 -c "import aiohttp, redis; print('ok')" > /built
"""

# Other tests' lab namespaces (tests/integration/lab.py) and SUT hosts may come and go while this module runs:
# their names carry a tag of their own (lf<tag>-N, lf<tag>oN; lfsut-<tag>, lfs<tag>oN).
OTHERS = re.compile(r"\blf(?:sut-|s)?([0-9a-f]{4})(?:-\d+|o\d+|-|\b)")


@pytest.fixture(scope="module")
def sut(base_image_tarball: Path) -> Iterator[SutHost]:
    with sut_host(base_image_tarball) as host:
        yield host


def remote(sut: SutHost, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(sut.ssh_command(command), capture_output=True, text=True, timeout=timeout)


def test_base_image_runs_the_shop_stack_python(sut: SutHost, base_image_tarball: Path) -> None:
    # Given the SUT host's daemon with the imported base image
    # When a container of it imports the shop's libraries and looks for its servers
    check = "python3 -c 'import aiohttp, redis' && for p in nginx redis-server curl ps; do command -v $p; done"
    done = sut.docker("run", "--rm", BASE_IMAGE, "sh", "-c", check)
    # Then it works with no registry, and the image is labelled with the tarball's cache key
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == 4
    label = sut.docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', BASE_IMAGE)
    assert label.stdout.strip() == tarball_key(base_image_tarball)


def test_compose_over_ssh_scales_and_goes_down(sut: SutHost, tmp_path: Path) -> None:
    # Given a two-service project (one built FROM the base) uploaded over SSH to a folder on the host
    project = tmp_path / "proj"
    (project / "web").mkdir(parents=True)
    (project / "compose.yaml").write_text(COMPOSE)
    (project / "web" / "Dockerfile").write_text(DOCKERFILE)
    folder = sut.root / "deployments" / "lftest-1"
    assert remote(sut, f"mkdir -p {shlex.quote(str(folder.parent))}").returncode == 0
    upload = subprocess.run(["scp", "-q", "-r", *sut.ssh_options(), "-P", str(sut.ssh_port), str(project),
                             f"{sut.ssh_user}@{sut.address}:{folder}"], capture_output=True, text=True, timeout=60)
    assert upload.returncode == 0, upload.stderr
    compose = f"cd {shlex.quote(str(folder))} && timeout 120 docker compose -p lftest-1"

    # When it comes up scaled to three web replicas, in one SSH command run on the host
    up = remote(sut, f"{compose} up -d --wait --wait-timeout 90 --scale web=3")
    assert up.returncode == 0, up.stderr
    ps = remote(sut, f"{compose} ps --format json")

    # Then every replica is running and healthy, and each answers on its own address
    assert ps.returncode == 0, ps.stderr
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    rows = [r for row in rows for r in (row if isinstance(row, list) else [row])]
    assert sorted(r["Service"] for r in rows) == ["cache", "web", "web", "web"]
    assert {r["Health"] for r in rows} == {"healthy"}
    for index in (1, 2, 3):
        answer = remote(sut, f"{compose} exec -T --index {index} web curl -fsS -o /dev/null -w %{{http_code}} "
                             "http://127.0.0.1:8000/")
        assert answer.stdout == "200", answer.stderr

    # When it is taken down with its volumes and orphans
    down = remote(sut, f"{compose} down -v --remove-orphans -t 2")

    # Then the host has no container, network or volume of the project left
    assert down.returncode == 0, down.stderr
    label = "label=com.docker.compose.project=lftest-1"
    for kind in ("container", "network", "volume"):
        listed = sut.docker(kind, "ls", *(["-a"] if kind == "container" else []), "-q", "--filter", label)
        assert listed.returncode == 0 and listed.stdout.strip() == "", (kind, listed.stdout)


def test_stack_dockerfile_builds_from_the_base_offline(sut: SutHost, tmp_path: Path) -> None:
    # Given a stack Dockerfile whose base is a build argument defaulting to a registry image
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    # When it is built with the offline base (no registry reachable from the SUT host)
    built = sut.docker("build", "-q", "--build-arg", f"BASE={BASE_IMAGE}", "-t", "lftest/app:1", str(tmp_path),
                       timeout=180)
    # Then the image exists, was built FROM the base, and ran its build step
    assert built.returncode == 0, built.stderr
    ran = sut.docker("run", "--rm", "lftest/app:1", "cat", "/built")
    assert ran.stdout.strip() == "ok", ran.stderr


def test_the_farm_logs_in_with_the_hosts_file_and_finds_this_host_s_docker(sut: SutHost, tmp_path: Path) -> None:
    # Given the fixture's hosts file, read by the farm
    hosts = load_hosts(sut.hosts_file(tmp_path / "farm-hosts.yaml"))
    assert hosts["sutA"].docker_host == sut.docker_host
    # When the farm's own SSH connection (paramiko, RejectPolicy, the named known_hosts) runs docker there,
    # without passing DOCKER_HOST itself
    with SSHConnection(hosts["sutA"]) as conn:
        compose = conn.run(["docker", "compose", "version", "--short"], timeout=30)
        root = conn.run(["docker", "info", "--format", "{{.DockerRootDir}}"], timeout=30)
    # Then the session talks to this host's own daemon, with the Compose v2 plugin
    assert compose.stdout.strip().startswith("2.")
    assert root.stdout.strip() == str(sut.root / "data")


def test_a_generator_namespace_reaches_the_host_over_its_own_link(sut: SutHost) -> None:
    # Given a lab host (a generator's namespace) joined to the SUT host, and a container publishing a port there
    served = sut.docker("run", "-d", "--rm", "--init", "-p", "18080:8000", BASE_IMAGE, "python3", "-m", "http.server",
                        "8000")
    assert served.returncode == 0, served.stderr
    try:
        with namespaces(1) as [lab]:
            assert lab.netns is not None
            address = sut.connect(lab.netns)
            inside = ["ip", "netns", "exec", lab.netns]
            # When the generator logs in over SSH and opens the published port at the host's address on that link
            login = subprocess.run([*inside, *sut.ssh_command("docker ps -q | wc -l", address)], capture_output=True,
                                   text=True, timeout=60)
            fetch = subprocess.run([*inside, sys.executable, "-c", "import sys, urllib.request; print(urllib.request."
                                    f"urlopen('http://{address}:18080/', timeout=10).status)"],
                                   capture_output=True, text=True, timeout=60)
            # Then both work: the host key is known under that address too, and Docker's port rules apply there
            assert login.returncode == 0 and login.stdout.strip() == "1", login.stderr
            assert fetch.stdout.strip() == "200", fetch.stderr
    finally:
        sut.docker("rm", "-f", served.stdout.strip())


def test_a_daemon_that_cannot_start_fails_with_its_log_and_leaves_nothing() -> None:
    # Given a snapshot of the box and a SUT host whose dockerd is given an option it does not know
    before = box_snapshot()
    fixture = SutHostFixture(None, "sutC", dockerd_args=("--no-such-option",))
    # When it is started
    with pytest.raises(SutHostError, match=r"dockerd did not start in the SUT namespace: .*no-such-option"):
        fixture.__enter__()
    # Then nothing it made is left: no interface, mount, namespace or folder
    assert _leftovers(before, box_snapshot(), fixture.tag) == {}
    assert not fixture.root.exists()


def test_the_host_of_a_killed_test_process_is_reaped_by_the_next_fixture() -> None:
    # Given a test process killed -9 while its SUT host runs (dockerd and sshd live on in sessions of their own)
    before = box_snapshot()
    script = ("import os; from tests.integration.sut import SutHostFixture; host = SutHostFixture(None, 'sutD')"
              ".__enter__(); print(host.netns, host.root, flush=True); os.kill(os.getpid(), 9)")
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], capture_output=True,
                         text=True, timeout=120)
    netns, root = run.stdout.split()
    orphans = in_namespace(netns)
    sshd_root = Path((Path(root) / "sshd-root").read_text())
    assert run.returncode == -9 and {"dockerd", "sshd"} <= {p.name() for p in orphans}, run.stderr
    # When the next fixture starts (it reaps first)
    reaped = reap_stale_hosts()
    # Then the dead process's host is gone whole: daemons, namespace, mounts, folder
    assert netns in reaped
    assert not [p for p in orphans if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert _leftovers(before, box_snapshot(), netns.removeprefix("lfsut-")) == {}
    assert not Path(root).exists() and not sshd_root.exists()


def in_namespace(netns: str) -> list[psutil.Process]:
    """The processes running in a network namespace."""
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    return [psutil.Process(int(pid)) for pid in pids]


def _leftovers(before: dict[str, set[str]], after: dict[str, set[str]], tag: str) -> dict[str, set[str]]:
    """What appeared between the snapshots, less other fixtures' things and iproute2's own /run/netns mount."""
    def ours(item: str) -> bool:
        found = OTHERS.search(item)
        return found is None or found.group(1) == tag

    new = {key: {item for item in after[key] - before[key] if ours(item)} for key in after}
    new["mounts"] = {m for m in new["mounts"] if m.split()[1] != "/run/netns"}  # made once, by the first netns add
    return {key: items for key, items in new.items() if items}


def test_teardown_leaves_nothing(base_image_tarball: Path) -> None:
    # Given a snapshot of the box, and a SUT host with a running container publishing a port, a network, a volume
    before = box_snapshot()
    with sut_host(base_image_tarball, "sutB") as host:
        assert host.docker("network", "create", "lfnet").returncode == 0
        assert host.docker("volume", "create", "lfvol").returncode == 0
        running = host.docker("run", "-d", "--network", "lfnet", "-v", "lfvol:/v", "-p", "8080:8000",
                              BASE_IMAGE, "python3", "-m", "http.server", "8000")
        assert running.returncode == 0, running.stderr
        during = box_snapshot()
        daemons = in_namespace(host.netns)
        names = {p.name() for p in daemons}
        assert {"dockerd", "containerd", "sshd"} <= names, names
        assert any(str(host.root) in m for m in during["mounts"])  # the daemon's overlay mounts, on the box
    after = box_snapshot()
    # Then the box's own firewall never changed (dockerd's rules live in the namespace)
    assert during["iptables"] == before["iptables"] and during["ip6tables"] == before["ip6tables"]
    # And after teardown: no interface, rule, mount or namespace is left, no process, no folder
    assert _leftovers(before, after, host.netns.removeprefix("lfsut-")) == {}
    assert host.netns not in " ".join(after["netns"])
    assert not any(str(host.root) in m for m in after["mounts"])
    assert not [p for p in daemons if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not host.root.exists()
