"""SSH to a SUT host with paramiko: one connection with `run` / `put_*` (fabric's shape), and host-key trust.

What this module holds to, and why (see DESIGN.md, "Remote SUT hosts"):

- Host keys come from the hosts file's ``known_hosts`` only (never the system files) under a `RejectPolicy`: an
  unknown or changed key is refused with its fingerprint; trusting one is a separate, explicit step
  (`trust_host_key`, ``farm hosts trust NAME``). Nothing here writes known_hosts on its own.
- Connect, banner and auth each have the connect timeout; a keepalive every 15 s notices a dead peer.
- Every remote command is ``shlex.join`` of an argv list, so no value reaches the remote shell unquoted; it runs
  under ``timeout`` on the host, and here under a local deadline, polling ``exit_status_ready()`` while draining
  stdout and stderr as they arrive (a full channel window would otherwise deadlock both sides).
- A paramiko client owns a socket and a thread: it must never cross ``fork()``. Open the connection inside the
  process that uses it (a Celery pool process, after the fork); one used in another process raises `SSHError`.
- The key's path may appear in messages and logs; key material never does. paramiko's own logger is silenced.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shlex
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paramiko

from farm.errors import (
    HostKeyChangedError,
    RemoteCommandError,
    RemoteTimeoutError,
    SSHAuthError,
    SSHError,
    SSHUnreachableError,
)
from farm.remote.hostkeys import (
    RefuseUnknownKey,
    fetch_host_key,
    host_key_fingerprint,
    known_host_keys,
    open_socket,
    reason,
    trust_host_key,
)
from farm.remote.hosts import SutHost, open_key_mode
from farm.text import clip, tail

__all__ = ["KEEPALIVE_S", "KILL_AFTER_S", "CommandResult", "SSHConnection", "fetch_host_key",
           "host_key_fingerprint", "known_host_keys", "trust_host_key"]

log = logging.getLogger(__name__)
# paramiko logs key fingerprints, user names and tracebacks of its transport thread; our errors say what matters.
_paramiko_log = logging.getLogger("paramiko")
_paramiko_log.addHandler(logging.NullHandler())
_paramiko_log.propagate = False

KEEPALIVE_S = 15
KILL_AFTER_S = 5  # `timeout` sends TERM at the deadline, KILL this much later
_LOCAL_GRACE_S = KILL_AFTER_S + 5  # the local deadline: the host's, its KILL, and some network slack
_CHUNK = 1 << 16
_POLL_MIN_S, _POLL_MAX_S = 0.001, 0.05
_LINGER_S = 1.0  # after the exit status, how long a silent channel is waited on for end of file
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class CommandResult:
    """What a remote command left: its exit code and its output, decoded as UTF-8 (invalid bytes replaced)."""

    code: int
    stdout: str
    stderr: str


class SSHConnection:
    """One SSH connection to a SUT host: `run` commands, `put_*` files. Open it in the process that uses it."""

    def __init__(self, host: SutHost, *, connect_timeout: float = 10.0) -> None:
        self.host = host
        self.connect_timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._pid: int | None = None

    def __enter__(self) -> SSHConnection:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> SSHConnection:
        """Connect and authenticate (once; later calls return at once); returns self."""
        if self._client is not None:
            self._same_process()
            return self
        self._client = self._connect()
        self._pid = os.getpid()
        return self

    def close(self) -> None:
        """Close the connection (idempotent). In a forked child it only forgets the parent's connection."""
        client, sftp, owned = self._client, self._sftp, self._pid == os.getpid()
        self._client = self._sftp = None
        self._pid = None
        if owned:  # closing a parent's socket from a child would break the parent's session
            for part in (sftp, client):
                if part is not None:
                    try:
                        part.close()
                    except Exception:  # closing is best effort: the peer may be gone already
                        log.debug("closing the SSH connection to %s failed", self.host.name, exc_info=True)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, check: bool = True,
            env: Mapping[str, str] | None = None) -> CommandResult:
        """Run ``argv`` on the host under a ``timeout`` deadline (both there and here); raise if it fails."""
        command = build_command(argv, timeout=timeout, env=env)
        shown = _shown(argv)
        log.debug("%s: run %s (env %s, timeout %gs)", self.host.name, shown, sorted(env or {}), timeout)
        channel = self._session()
        started = time.monotonic()
        try:
            channel.exec_command(command)
            channel.shutdown_write()  # no standard input: a command reading it sees end of file
            code, out, err = _drain(channel, started + timeout + _LOCAL_GRACE_S)
        except TimeoutError as exc:
            raise RemoteTimeoutError(f"{self.host.name}: {shown} did not end within {timeout:g} s (no answer from "
                                     "the host either; the channel was closed)") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHUnreachableError(f"{self.host.name}: the connection was lost while running {shown}: "
                                      f"{reason(exc)}") from exc
        finally:
            channel.close()
        result = CommandResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if code in (124, 137) and time.monotonic() - started >= timeout * 0.9:
            raise RemoteTimeoutError(f"{self.host.name}: {shown} did not end within {timeout:g} s and was stopped"
                                     " on the host")
        if check and code != 0:
            status = "ended without an exit status (killed by a signal?)" if code < 0 else f"exited with {code}"
            last = tail(result.stderr) or tail(result.stdout)
            raise RemoteCommandError(f"{self.host.name}: {shown} {status}" + (f": {last}" if last else ""),
                                     code=code, stdout=result.stdout, stderr=result.stderr)
        return result

    def put_text(self, remote_path: str, text: str, mode: int = 0o644) -> None:
        """Write ``text`` (UTF-8) to a file on the host, with ``mode`` set before anything is written."""
        sftp = self._sftp_client()
        try:
            with sftp.open(remote_path, "wb") as fh:
                fh.chmod(mode)
                fh.write(text.encode("utf-8"))
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise SSHError(f"{self.host.name}: cannot write {remote_path}: {reason(exc)}") from exc

    def put_file(self, local: Path, remote_path: str) -> None:
        """Upload one file, keeping its permission bits."""
        sftp = self._sftp_client()
        try:
            mode = stat.S_IMODE(local.stat().st_mode)
            sftp.put(str(local), remote_path)
            sftp.chmod(remote_path, mode)
        except (OSError, paramiko.SSHException, EOFError) as exc:
            raise SSHError(f"{self.host.name}: cannot upload {local} to {remote_path}: {reason(exc)}") from exc

    def put_tree(self, local: Path, remote_dir: str) -> None:
        """Upload a folder recursively into ``remote_dir`` (created with its parents); symlinked folders refused."""
        if not local.is_dir():
            raise SSHError(f"{self.host.name}: cannot upload {local}: not a folder")
        self.run(["mkdir", "-p", "--", remote_dir], timeout=max(self.connect_timeout, 30))
        sftp = self._sftp_client()
        for folder, dirs, files in os.walk(local):
            here = Path(folder)
            remote_here = _remote_join(remote_dir, here.relative_to(local))
            for name in sorted(dirs):
                if (here / name).is_symlink():
                    raise SSHError(f"{self.host.name}: cannot upload {here / name}: a symlinked folder",
                                   hint="copy its contents into the folder instead")
                # It may exist already (a second upload); a real failure shows on its first file.
                with contextlib.suppress(OSError):
                    sftp.mkdir(f"{remote_here}/{name}")
            for name in sorted(files):
                self.put_file(here / name, f"{remote_here}/{name}")

    def _same_process(self) -> None:
        if self._pid != os.getpid():
            raise SSHError(f"{self.host.name}: this SSH connection was opened in another process (pid {self._pid})",
                           hint="open the connection inside the process that uses it, after any fork")

    def _transport(self) -> paramiko.Transport:
        self.open()
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise SSHUnreachableError(f"{self.host.name}: the SSH connection to {self.host.target} was lost")
        return transport

    def _session(self) -> paramiko.Channel:
        try:
            return self._transport().open_session(timeout=self.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SSHUnreachableError(f"{self.host.name}: cannot open an SSH session on {self.host.target}: "
                                      f"{reason(exc)}") from exc

    def _sftp_client(self) -> paramiko.SFTPClient:
        transport = self._transport()
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise SSHError(f"{self.host.name}: SFTP is not available on {self.host.target}: {reason(exc)}",
                               hint="enable sshd's sftp subsystem") from exc
            assert self._sftp is not None
            self._sftp.get_channel().settimeout(max(self.connect_timeout, 60))
        return self._sftp

    def _connect(self) -> paramiko.SSHClient:
        host, timeout = self.host, self.connect_timeout
        pkey = _load_key(host)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(RefuseUnknownKey(host))
        if host.known_hosts.exists():  # this file only: never the system's known_hosts
            try:
                client.load_host_keys(str(host.known_hosts))
            except Exception as exc:
                raise SSHError(f"{host.name}: cannot read {host.known_hosts}: {reason(exc)}") from exc
        deadline = time.monotonic() + timeout
        sock = open_socket(host, deadline)
        remaining = max(deadline - time.monotonic(), 0.1)
        log.debug("%s: connecting to %s (key %s)", host.name, host.target, host.key or "agent/default keys")
        try:
            client.connect(host.address, port=host.port, username=host.user, pkey=pkey, sock=sock,
                           allow_agent=pkey is None, look_for_keys=pkey is None, timeout=remaining,
                           banner_timeout=remaining, auth_timeout=remaining, channel_timeout=timeout)
        except BaseException as exc:
            client.close()
            sock.close()
            raise self._translate(exc) from exc
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(KEEPALIVE_S)
        return client

    def _translate(self, exc: BaseException) -> BaseException:
        host = self.host
        key = str(host.key) if host.key is not None else "ssh-agent and the default keys"
        if isinstance(exc, SSHError | KeyboardInterrupt | SystemExit):
            return exc
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyChangedError(
                f"{host.name}: the host key of {host.target} has CHANGED: it offers {exc.key.get_name()} "
                f"{host_key_fingerprint(exc.key)}, but {host.known_hosts} holds "
                f"{host_key_fingerprint(exc.expected_key)}; possible attack (someone in the middle), or the host "
                "was reinstalled; refused",
                hint=f"if the change is expected: ssh-keygen -f {host.known_hosts} -R '{host.known_hosts_name}', "
                     f"then farm hosts trust {host.name}")
        text = reason(exc)
        if isinstance(exc, paramiko.AuthenticationException) and "timeout" not in text.lower():
            return SSHAuthError(f"{host.name}: {host.target} refused user {host.user!r} with {key}",
                                hint="add the public key to that user's ~/.ssh/authorized_keys on the host, "
                                     "or name the right key: in the hosts file")
        if isinstance(exc, paramiko.SSHException) and "no authentication methods" in text.lower():
            return SSHAuthError(f"{host.name}: no key to offer {host.target} as user {host.user!r}",
                                hint="name a key: in the hosts file, or load one into ssh-agent")
        return SSHUnreachableError(f"{host.name}: no SSH answer from {host.target} within "
                                   f"{self.connect_timeout:g} s: {text}")


def build_command(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> str:
    """The shell line that runs ``argv`` on the host: every value quoted, under ``timeout``, with ``env`` set."""
    if isinstance(argv, str) or not argv:
        raise ValueError("argv must be a non-empty sequence of arguments, not a string")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, not {timeout!r}")
    words = ["timeout", f"--kill-after={KILL_AFTER_S}", f"{timeout:.3f}s"]
    if env:
        bad = [name for name in env if not _ENV_NAME.fullmatch(name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an environment variable name")
        words += ["env", *(f"{name}={value}" for name, value in env.items())]
    return shlex.join([*words, *(str(a) for a in argv)])


def _drain(channel: paramiko.Channel, deadline: float) -> tuple[int, bytes, bytes]:
    """Read stdout and stderr as they come until the exit status and end of file; TimeoutError past ``deadline``."""
    out: list[bytes] = []
    err: list[bytes] = []
    quiet_since: float | None = None
    wait = _POLL_MIN_S
    while True:
        got = False
        while channel.recv_ready():
            out.append(channel.recv(_CHUNK))
            got = True
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(_CHUNK))
            got = True
        now = time.monotonic()
        if channel.exit_status_ready():
            # sshd may send the exit status before the last of the output: read on until end of file, but a
            # background child that keeps the pipes open must not keep us waiting once output stops.
            if channel.eof_received or channel.closed:
                if not (channel.recv_ready() or channel.recv_stderr_ready()):
                    return channel.recv_exit_status(), b"".join(out), b"".join(err)
                continue
            if got or quiet_since is None:
                quiet_since = now
            elif now - quiet_since > _LINGER_S:
                return channel.recv_exit_status(), b"".join(out), b"".join(err)
        if now >= deadline:
            raise TimeoutError
        # The exit status wakes no select: poll often while a command is quick, rarely once it runs long.
        wait = _POLL_MIN_S if got else min(wait * 2, _POLL_MAX_S)
        select.select([channel], [], [], min(deadline - now, wait))


def _load_key(host: SutHost) -> paramiko.PKey | None:
    if host.key is None:
        return None
    if (mode := open_key_mode(host.key)) is not None:
        raise SSHAuthError(f"{host.name}: the private key {host.key} is open to group or others (mode {mode:04o}); "
                           "ssh refuses such a key, and so does the farm", hint=f"chmod 600 {host.key}")
    try:
        return paramiko.PKey.from_path(host.key)
    except paramiko.PasswordRequiredException as exc:
        raise SSHAuthError(f"{host.name}: the key {host.key} is protected by a passphrase, which the farm does not "
                           "ask for", hint="load it into ssh-agent and drop key: from the hosts file") from exc
    except FileNotFoundError as exc:
        raise SSHAuthError(f"{host.name}: the key file {host.key} does not exist",
                           hint="fix key: in the hosts file") from exc
    except (OSError, paramiko.SSHException, ValueError, paramiko.UnknownKeyType) as exc:
        raise SSHAuthError(f"{host.name}: cannot read the private key {host.key}: {type(exc).__name__}",
                           hint="name an OpenSSH private key (ed25519, ecdsa or rsa) in key:") from exc


def _remote_join(base: str, relative: Path) -> str:
    parts = [p for p in relative.parts if p not in ("", ".")]
    return "/".join([base.rstrip("/") or "/", *parts]) if parts else base


def _shown(argv: Sequence[str], limit: int = 80) -> str:
    text = shlex.join(str(a) for a in argv)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return f"`{clip(text, limit)}`"
