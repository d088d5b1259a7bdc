"""A real OpenSSH server for tests: Debian's /usr/sbin/sshd with its own host key, config and client key.

    with sshd() as server:                       # 127.0.0.1, a free port, root's login with the client key
        host = server.sut_host("sut")            # a SutHost trusting the server's key
    with sshd(listen_address="10.214.1.2", wrap=["ip", "netns", "exec", ns]) as server: ...

Nothing is installed or left behind: keys, config, known_hosts and logs live in one temporary folder; the server
and every process it started are stopped on exit.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import yaml

from farm.remote.hosts import SutHost
from farm.stacks.probe import free_port

SSHD = Path("/usr/sbin/sshd")


def require_sshd() -> None:
    """Skip on a laptop, fail in CI, when OpenSSH's server or ssh-keygen is missing."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        message = "sshd is not installed (apt-get install openssh-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def make_key(path: Path, kind: str = "ed25519") -> Path:
    """A new passphrase-less key pair at ``path`` and ``path``.pub; returns the private key's path."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "loadfarm-test", "-f", str(path)],
                   check=True, capture_output=True)
    return path


def fingerprint(public_key: Path) -> str:
    """``SHA256:…`` of a public key file, as ssh-keygen prints it."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key)],
                         check=True, capture_output=True, text=True).stdout
    return out.split()[1]


@dataclass
class Sshd:
    """A running sshd: where it listens, its files, and helpers to write a known_hosts and a hosts file."""

    root: Path
    listen_address: str
    port: int
    user: str
    client_key: Path
    host_key: Path
    proc: subprocess.Popen[bytes] | None = None
    wrap: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        """What sshd wrote to its log so far."""
        path = self.root / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def host_key_fingerprint(self) -> str:
        """The server's host key fingerprint, as ``ssh-keygen -l`` shows it."""
        return fingerprint(self.host_key.with_suffix(".pub"))

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names this server."""
        return self.listen_address if self.port == 22 else f"[{self.listen_address}]:{self.port}"

    @property
    def target(self) -> str:
        """``user@address:port`` for a hosts file."""
        return f"{self.user}@{self.listen_address}:{self.port}"

    def write_known_hosts(self, path: Path | None = None) -> Path:
        """A known_hosts file trusting this server's host key (appended to ``path`` if it exists)."""
        path = path or self.root / "known_hosts"
        kind, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        line = f"{self.known_hosts_name} {kind} {blob}\n"
        if not path.exists() or line not in path.read_text():
            with path.open("a") as fh:
                fh.write(line)
        path.chmod(0o600)
        return path

    def hosts_entry(self, *, key: Path | None = None, known_hosts: Path | None = None,
                    docker_host: str | None = None, workdir: str | None = None) -> dict[str, str]:
        """This server as one entry of a hosts file (the client key and a known_hosts trusting it by default)."""
        entry = {"ssh": self.target, "key": str(key or self.client_key),
                 "known_hosts": str(known_hosts or self.write_known_hosts())}
        if docker_host:
            entry["docker_host"] = docker_host
        if workdir:
            entry["workdir"] = workdir
        return entry

    def sut_host(self, name: str = "sut", *, key: Path | None = None, known_hosts: Path | None = None,
                 docker_host: str | None = None, workdir: str = "/tmp/loadfarm") -> SutHost:
        """This server as a `SutHost` (the client key and a known_hosts trusting it by default)."""
        return SutHost(name=name, user=self.user, address=self.listen_address, port=self.port,
                       key=key or self.client_key, known_hosts=known_hosts or self.write_known_hosts(),
                       docker_host=docker_host, workdir=workdir)


def write_hosts_file(path: Path, entries: dict[str, dict[str, str]]) -> Path:
    """A hosts file (FARM_HOSTS_FILE format) with the given entries, e.g. ``{"sutA": server.hosts_entry()}``."""
    path.write_text(yaml.safe_dump({"sut_hosts": entries}, sort_keys=False))
    return path


@contextlib.contextmanager
def sshd(*, listen_address: str = "127.0.0.1", port: int | None = None, wrap: Sequence[str] = (),
         env: Mapping[str, str] | None = None, extra_config: Sequence[str] = (),
         startup_timeout: float = 10.0) -> Iterator[Sshd]:
    """Start sshd on ``listen_address``:``port`` (a free port by default) under ``wrap``; stop it on exit.

    ``env`` is set in every session (sshd's one `SetEnv` line, e.g. DOCKER_HOST), with SHLVL=1: bash, run by sshd
    for a command, sources the user's ~/.bashrc only at shell level 1, and on a developer's box (this one) that file
    runs `pyenv init`, i.e. `pyenv rehash` under a machine-wide lock file; a session killed mid-login (a worker
    killed with -9, a command's timeout, this fixture's own teardown) leaves that lock behind, and every later login
    on the machine then waits 60 s for it. The sessions get sshd's default PATH. ``extra_config`` lines are appended
    to sshd_config.
    """
    require_sshd()
    root = Path(tempfile.mkdtemp(prefix="farm-sshd-"))
    os.chmod(root, 0o755)
    user = getpass.getuser()
    server = Sshd(root=root, listen_address=listen_address, port=port or free_port(), user=user,
                  client_key=make_key(root / "client_key"), host_key=make_key(root / "ssh_host_ed25519_key"),
                  wrap=list(wrap))
    shutil.copy(root / "client_key.pub", root / "authorized_keys")
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {server.port}", f"ListenAddress {listen_address}", f"HostKey {server.host_key}",
        f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no", "PrintMotd no",
        "Subsystem sftp internal-sftp", "LogLevel VERBOSE",
        "SetEnv " + " ".join(f"{k}={v}" for k, v in {"SHLVL": "1", **(env or {})}.items()), *extra_config, ""]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = (root / "sshd.log").open("wb")
    server.proc = subprocess.Popen([*wrap, str(SSHD), "-D", "-e", "-f", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + startup_timeout
        while "Server listening on" not in server.log:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {server.log[-2000:]}")
            time.sleep(0.05)
        yield server
    finally:
        _stop(server.proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop sshd and every session it started (those run in sessions of their own)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        children = []
    proc.terminate()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    psutil.wait_procs(children, timeout=5)
