"""SSH drops between the farm and a SUT host (a real sshd): metrics and teardown reconnect once; a teardown that
still fails says so, and the host's next lease holder removes what it left."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from farm.errors import ProvisionError
from farm.remote.hosts import load_hosts
from farm.remote.shell import ssh_connector
from farm.stacks.compose import ComposeDriver
from farm.stacks.driver import Deployment
from farm.stacks.manifest import load_manifest, resolve_stack_folder
from farm.stacks.probe import free_port
from tests.integration.sut import SutHost, base_image_tarball, sut_host

pytestmark = [pytest.mark.integration]
__all__ = ["base_image_tarball"]


@pytest.fixture(scope="module")
def sut(base_image_tarball: Path) -> Iterator[SutHost]:
    with sut_host(base_image_tarball) as host:
        yield host


def drop_sessions(sut: SutHost) -> int:
    """Kill the sshd processes serving connections on the host (not its listener): every connection drops."""
    pids = subprocess.run(["ip", "netns", "pids", sut.netns], capture_output=True, text=True).stdout.split()
    procs = [psutil.Process(int(p)) for p in pids]
    sessions = [p for p in procs if p.name() == "sshd" and p.parent() is not None and p.parent().name() == "sshd"]
    for proc in sessions:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(sessions, timeout=10)
    return len(sessions)


def project_containers(sut: SutHost, name: str) -> list[str]:
    return sut.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout.split()


def up(driver: ComposeDriver, name: str) -> Deployment:
    manifest = load_manifest(resolve_stack_folder("shop"))
    params: dict[str, Any] = {**manifest.defaults(), "instances": 1, "architecture": "monolith", "cache": "none"}
    deployment = driver.up(manifest, params, name)
    driver.ready(deployment, time.monotonic() + 120)
    return deployment


def test_metrics_and_teardown_reconnect_once_after_a_dropped_connection(sut: SutHost, tmp_path: Path) -> None:
    host = load_hosts(sut.hosts_file(tmp_path / "farm-hosts.yaml", workdir=str(sut.root / "work")))["sutA"]
    driver = ComposeDriver(host, tmp_path / "deployments", ssh_connector(10.0))
    # Given the shop running on the SUT host
    deployment = up(driver, "drops-a1")
    try:
        # When the SSH connection drops (the host's sshd session process is killed) and metrics are read
        assert drop_sessions(sut) >= 1
        metrics = driver.metrics(deployment)
        # Then the reading reconnected and sampled the stack's containers on the host
        assert metrics.resources is not None
        # When it drops again and the stack is taken down
        assert drop_sessions(sut) >= 1
        driver.down(deployment)
        # Then the teardown reconnected and removed it
        assert project_containers(sut, "drops-a1") == []
    finally:
        with contextlib.suppress(Exception):
            driver.clean("drops-a1")


def test_a_teardown_that_still_fails_says_so_and_the_next_claim_removes_the_stack(sut: SutHost,
                                                                                 tmp_path: Path) -> None:
    host = load_hosts(sut.hosts_file(tmp_path / "farm-hosts.yaml", workdir=str(sut.root / "work")))["sutA"]
    driver = ComposeDriver(host, tmp_path / "deployments", ssh_connector(5.0))
    # Given the shop running on the SUT host
    deployment = up(driver, "drops-a2")
    assert project_containers(sut, "drops-a2")
    # When the connection drops and the host cannot be reached again (nothing listens where it is looked for)
    driver.host = dataclasses.replace(host, port=free_port())
    assert drop_sessions(sut) >= 1
    # Then the teardown fails, saying that the stack is removed at the host's next claim
    with pytest.raises(ProvisionError, match=r"teardown of drops-a2 on sutA failed: .*removed when the host is "
                                             r"next claimed"):
        driver.down(deployment)
    assert project_containers(sut, "drops-a2")
    # When the host is next claimed (the lease holder clears it of every farm deployment)
    removed = ComposeDriver(host, tmp_path / "deployments", ssh_connector(10.0)).clean_strays()
    # Then the stack is gone
    assert removed == ["drops-a2"]
    assert project_containers(sut, "drops-a2") == []
