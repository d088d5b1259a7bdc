"""Where a stack runs: the one place that chooses its driver (here as processes, or Docker Compose on a SUT host
over SSH) and cleans up what dead owners left in either place.

A sweep without `sut:` runs its stack here (`LocalDriver`); with `sut:`, on the SUT host its group holds
(`ComposeDriver`). Both record each deployment under ``<artefacts>/deployments/<name>/`` with its owner
(`farm.stacks.owner`), which is how `clean_dead` and `remove` find them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import SpecError
from farm.remote.hosts import SutHost, load_hosts
from farm.remote.shell import ssh_connector
from farm.settings import Settings
from farm.stacks.compose import STATE_FILE as REMOTE_STATE
from farm.stacks.compose import ComposeDriver
from farm.stacks.driver import StackDriver, check_deployment_name
from farm.stacks.local import LocalDriver
from farm.stacks.owner import read_state


def deployments_root(settings: Settings) -> Path:
    """Where every deployment of this host is recorded."""
    return settings.artefacts_dir / "deployments"


def local_driver(settings: Settings, *, owned: bool = True) -> LocalDriver:
    """The driver that runs stacks here as processes (``owned=False``: started by hand, no owner recorded)."""
    return LocalDriver(deployments_root(settings), owned=owned)


def sut_driver(settings: Settings, host: SutHost, *, owned: bool = True) -> ComposeDriver:
    """The driver that runs stacks as Docker Compose on ``host``, over SSH."""
    return ComposeDriver(host, deployments_root(settings), ssh_connector(settings.ssh_connect_timeout_s),
                         owned=owned, up_timeout_s=max(120.0, settings.ready_timeout_s))


def choose(settings: Settings, sut: SutHost | None, local: StackDriver | None = None, *,
           owned: bool = True) -> StackDriver:
    """The driver for a stack: on the SUT host ``sut`` when the sweep names one (`sut:`), else here (``local``
    when given, e.g. a worker's own)."""
    if sut is not None:
        return sut_driver(settings, sut, owned=owned)
    return local if local is not None else local_driver(settings, owned=owned)


def host_facts(driver: StackDriver, here: dict[str, Any]) -> dict[str, Any]:
    """What is recorded with a cell about where it ran: this host's facts, and the SUT host's if it has one."""
    sut = driver.fingerprint()
    return here if sut is None else {**here, "sut": sut}


def sut_host(settings: Settings, name: str) -> SutHost:
    """The SUT host ``name`` of the hosts file (FARM_HOSTS_FILE); SpecError naming the known ones otherwise."""
    hosts = load_hosts(settings.hosts_file)
    if name not in hosts:
        raise SpecError(f"--sut {name}: no such host in {settings.hosts_file}; known: {', '.join(hosts) or 'none'}")
    return hosts[name]


@dataclass(frozen=True)
class Cleaned:
    """What a start-up clean-up removed: process groups here, deployments on SUT hosts."""

    processes: int
    deployments: int


def clean_dead(settings: Settings) -> Cleaned:
    """Remove every deployment, here and on the SUT hosts of the hosts file, whose owner process is gone."""
    stopped = local_driver(settings).clean_dead()
    removed = 0
    if settings.hosts_file.is_file():
        for host in load_hosts(settings.hosts_file).values():
            removed += sut_driver(settings, host, owned=False).clean_dead()
    return Cleaned(stopped, removed)


@dataclass(frozen=True)
class Removed:
    """What `remove` stopped: ``count`` processes here (``sut`` None) or containers on the SUT host ``sut``."""

    count: int
    sut: str | None


def remove(settings: Settings, name: str) -> Removed:
    """Stop a deployment by its name wherever it was recorded to run (`farm stack down`)."""
    check_deployment_name(name)
    state = deployments_root(settings) / name / REMOTE_STATE
    if state.is_file():
        host = str(read_state(state).get("host"))
        return Removed(sut_driver(settings, sut_host(settings, host), owned=False).clean(name), host)
    return Removed(local_driver(settings).clean(name), None)
