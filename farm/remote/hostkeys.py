"""SSH host keys: their fingerprints, the keys a host's known_hosts trusts, fetching and trusting one, and the
policy that refuses an unknown key (with the command that trusts it). Nothing here writes known_hosts on its own:
trusting is the explicit step `farm hosts trust NAME`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import time

import paramiko

from farm.errors import SSHError, SSHUnreachableError, UnknownHostKeyError
from farm.remote.hosts import SutHost

log = logging.getLogger("farm.remote.ssh")
_RSA_SIGNATURES = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


def host_key_fingerprint(key: paramiko.PKey) -> str:
    """The key's ``SHA256:…`` fingerprint, as ``ssh-keygen -l`` prints it (base64 without padding)."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_host_keys(host: SutHost) -> dict[str, paramiko.PKey]:
    """The keys ``host.known_hosts`` trusts for the host, by key type (empty when the file does not exist)."""
    keys = paramiko.HostKeys()
    if host.known_hosts.exists():
        try:
            keys.load(str(host.known_hosts))
        except Exception as exc:  # paramiko raises several kinds for a malformed line
            raise SSHError(f"{host.name}: cannot read {host.known_hosts}: {reason(exc)}") from exc
    found = keys.lookup(host.known_hosts_name)
    return dict(found.items()) if found is not None else {}


def fetch_host_key(host: SutHost, timeout: float) -> paramiko.PKey:
    """The key the host offers, fetched without authenticating (preferring a type already trusted, as SSH does)."""
    sock = open_socket(host, time.monotonic() + timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        _prefer_key_types(transport, list(known_host_keys(host)))
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise SSHUnreachableError(f"{host.name}: no SSH answer from {host.target} within {timeout:g} s: "
                                  f"{reason(exc)}") from exc
    finally:
        transport.close()


def trust_host_key(host: SutHost, key: paramiko.PKey) -> None:
    """Append the key to ``host.known_hosts`` for the host (``[address]:port`` off port 22), creating it 0600."""
    path = host.known_hosts
    line = f"{host.known_hosts_name} {key.get_name()} {key.get_base64()}\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = "\n" + line
            fh.write(line.encode("ascii"))
    except OSError as exc:
        raise SSHError(f"{host.name}: cannot write {path}: {reason(exc)}") from exc
    log.info("trusted %s key %s for %s in %s", key.get_name(), host_key_fingerprint(key), host.name, path)


class RefuseUnknownKey(paramiko.RejectPolicy):
    """paramiko's RejectPolicy, refusing with the fingerprint and the command that trusts the key."""

    def __init__(self, host: SutHost) -> None:
        self.host = host

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """Refuse an unknown key, saying which key and how to trust it."""
        host = self.host
        raise UnknownHostKeyError(
            f"{host.name}: the host key of {host.target} is unknown ({key.get_name()} {host_key_fingerprint(key)},"
            f" not in {host.known_hosts}); refused",
            hint=f"if that is the host's fingerprint, trust it with: farm hosts trust {host.name}")


def open_socket(host: SutHost, deadline: float) -> socket.socket:
    """A TCP connection to the host's SSH port, or SSHUnreachableError, by the deadline."""
    try:
        return socket.create_connection((host.address, host.port), timeout=max(deadline - time.monotonic(), 0.1))
    except OSError as exc:
        raise SSHUnreachableError(f"{host.name}: cannot reach {host.target}: {reason(exc)}") from exc


def _prefer_key_types(transport: paramiko.Transport, known: list[str]) -> None:
    """Ask first for a key type already trusted, as paramiko's client does, so `farm hosts trust` sees that key."""
    if not known:
        return
    options = transport.get_security_options()
    wanted = list(_RSA_SIGNATURES) if known[0] == "ssh-rsa" else [known[0]]
    first = [kind for kind in wanted if kind in options.key_types]
    options.key_types = first + [kind for kind in options.key_types if kind not in first]


def reason(exc: BaseException) -> str:
    """What went wrong, in one line (the OS's words for an OSError; paramiko's silent timeout named)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip() or type(exc).__name__
    if text == "No existing session":  # paramiko's start_client returns at its timeout without saying so
        return "no key exchange (timed out)"
    if isinstance(exc, socket.timeout | TimeoutError) and text == "timed out":
        return "timed out"
    return text.splitlines()[0]
