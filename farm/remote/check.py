"""Is a SUT host usable? SSH, host key, auth, a quiet login shell, Docker and Compose, free disk and memory, clock
offset.

`check_hosts` answers for several hosts at once (one thread and one SSH connection each); ``farm hosts check``
prints the answer as a table.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from farm.errors import (
    HostKeyChangedError,
    RemoteTimeoutError,
    SSHAuthError,
    SSHError,
    SSHUnreachableError,
    UnknownHostKeyError,
)
from farm.remote.hosts import SutHost
from farm.remote.ssh import SSHConnection
from farm.text import clip, tail

COLUMNS = ("ssh", "host key", "auth", "shell", "docker", "compose", "disk free", "memory free", "clock offset")
_COMMAND_TIMEOUT_S = 20.0
SLOW_SHELL_S = 1.0  # sshd starts the user's login shell for every command: its start-up costs each one this much


@dataclass(frozen=True)
class Outcome:
    """One check's answer: a short text, and whether it passed (None: not run, or only informative)."""

    text: str
    ok: bool | None = True


@dataclass
class HostCheck:
    """Every check of one SUT host, by column, and the reason it is unusable (None when usable)."""

    host: SutHost
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    problem: str | None = None

    @property
    def usable(self) -> bool:
        """Whether stacks can run there: reachable, trusted, authenticated, with Docker and Compose."""
        return self.problem is None

    def fail(self, column: str, text: str, *, fatal: bool = True, detail: str | None = None) -> None:
        """Record a failed check (``detail`` says more than the cell); a fatal one makes the host unusable."""
        self.outcomes[column] = Outcome(text, ok=False)
        if fatal and self.problem is None:
            self.problem = f"{column}: {detail or text}"


def check_hosts(hosts: list[SutHost], connect_timeout: float) -> list[HostCheck]:
    """Check every host (in parallel), in the order given."""
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
        return list(pool.map(lambda h: check_host(h, connect_timeout), hosts))


def check_host(host: SutHost, connect_timeout: float) -> HostCheck:
    """Connect to one host and run every check; each failure is one short reason in its column."""
    report = HostCheck(host)
    conn = SSHConnection(host, connect_timeout=connect_timeout)
    try:
        conn.open()
    except UnknownHostKeyError:
        report.outcomes["ssh"] = Outcome("ok")
        report.fail("host key", "unknown", detail=f"unknown; if it is the host's, run farm hosts trust {host.name}")
        return report
    except HostKeyChangedError:
        report.outcomes["ssh"] = Outcome("ok")
        report.fail("host key", "CHANGED", detail=f"CHANGED: possible attack; farm hosts trust {host.name} says more")
        return report
    except SSHAuthError as exc:
        report.outcomes.update({"ssh": Outcome("ok"), "host key": Outcome("ok")})
        report.fail("auth", "refused", detail=_without_name(exc.message, host))
        return report
    except SSHError as exc:
        report.fail("ssh", _last_part(exc.message), detail=_without_name(exc.message, host))
        return report
    try:
        report.outcomes.update({"ssh": Outcome("ok"), "host key": Outcome("ok"), "auth": Outcome("ok")})
        _run_checks(conn, report)
    finally:
        conn.close()
    return report


def _run_checks(conn: SSHConnection, report: HostCheck) -> None:
    checks: list[tuple[str, Callable[[SSHConnection, SutHost], Outcome], bool]] = [
        ("shell", _shell, True), ("docker", _docker, True), ("compose", _compose, True), ("disk free", _disk, False),
        ("memory free", _memory, False), ("clock offset", _clock, False)]
    for column, check, fatal in checks:
        try:
            outcome = check(conn, report.host)
        except RemoteTimeoutError:
            outcome = Outcome(f"no answer in {_COMMAND_TIMEOUT_S:g} s", ok=False)
        except SSHUnreachableError as exc:
            report.fail(column, _last_part(exc.message))
            return
        if outcome.ok is False:
            report.fail(column, outcome.text, fatal=fatal)
        else:
            report.outcomes[column] = outcome


def _shell(conn: SSHConnection, host: SutHost) -> Outcome:
    """A command over SSH runs in the user's login shell, which (bash) reads ~/.bashrc first: it must print nothing
    on stdout (the farm reads commands' output), and should write nothing to stderr and take no time (every command
    pays it)."""
    began = time.monotonic()
    result = conn.run(["true"], check=False, timeout=_COMMAND_TIMEOUT_S)
    took = time.monotonic() - began
    if result.stdout.strip() or result.code != 0:
        return Outcome(f"start-up prints: {clip(tail(result.stdout, 1), 50)!r}" if result.stdout.strip() else
                       f"`true` exited with {result.code}", ok=False)
    notes = [f"start-up takes {took:.1f} s a command"] if took > SLOW_SHELL_S else []
    if result.stderr.strip():
        notes.append(f"start-up writes to stderr: {clip(tail(result.stderr, 1), 50)!r}")
    return Outcome("; ".join(notes), ok=None) if notes else Outcome("quiet")


def _docker_env(host: SutHost) -> dict[str, str] | None:
    return {"DOCKER_HOST": host.docker_host} if host.docker_host else None


def _docker(conn: SSHConnection, host: SutHost) -> Outcome:
    result = conn.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False,
                      timeout=_COMMAND_TIMEOUT_S, env=_docker_env(host))
    if result.code == 127:
        return Outcome("not found", ok=False)
    if result.code != 0 or not result.stdout.strip():
        if "Cannot connect to the Docker daemon" in result.stderr:
            return Outcome(f"no daemon at {host.docker_host or 'the default socket'}", ok=False)
        if "permission denied" in result.stderr.lower():
            return Outcome(f"permission denied on the socket ({host.user} not in group docker?)", ok=False)
        return Outcome(clip(tail(result.stderr, 1), 70) or f"exited with {result.code}", ok=False)
    return Outcome(result.stdout.strip())


def _compose(conn: SSHConnection, host: SutHost) -> Outcome:
    for argv in (["docker", "compose", "version", "--short"], ["docker-compose", "version", "--short"]):
        result = conn.run(argv, check=False, timeout=_COMMAND_TIMEOUT_S, env=_docker_env(host))
        if result.code == 0 and result.stdout.strip():
            version = result.stdout.strip().splitlines()[0]
            return Outcome(version if argv[0] == "docker" else f"{version} (docker-compose)")
    return Outcome("not found", ok=False)


def _disk(conn: SSHConnection, host: SutHost) -> Outcome:
    # "~/…": below the home folder, where a command over SSH starts
    parent = "." if host.workdir.startswith("~") else posixpath.dirname(host.workdir.rstrip("/")) or "/"
    result = conn.run(["df", "-Pk", parent], check=False, timeout=_COMMAND_TIMEOUT_S)
    try:
        available_kib = int(result.stdout.strip().splitlines()[-1].split()[3])
    except (IndexError, ValueError):
        return Outcome(f"df {parent}: " + (clip(tail(result.stderr, 1), 70) or "unreadable"), ok=False)
    return Outcome(f"{_gib(available_kib)} in {parent}")


def _memory(conn: SSHConnection, host: SutHost) -> Outcome:
    result = conn.run(["cat", "/proc/meminfo"], check=False, timeout=_COMMAND_TIMEOUT_S)
    for line in result.stdout.splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable" and value.split() and value.split()[0].isdigit():
            return Outcome(_gib(int(value.split()[0])))
    return Outcome("no MemAvailable in /proc/meminfo", ok=False)


def _clock(conn: SSHConnection, host: SutHost) -> Outcome:
    before = time.time()
    result = conn.run(["date", "+%s.%N"], check=False, timeout=_COMMAND_TIMEOUT_S)
    after = time.time()
    try:
        remote = float(result.stdout.strip())
    except ValueError:
        return Outcome("date +%s.%N: unreadable", ok=False)
    offset, error = remote - (before + after) / 2, (after - before) / 2
    return Outcome(f"{offset:+.3f} s ± {error:.3f}", ok=None if abs(offset) > 1 + error else True)


def _gib(kib: int) -> str:
    return f"{kib / (1 << 20):.1f} GiB"


def _without_name(message: str, host: SutHost) -> str:
    return message.removeprefix(f"{host.name}: ")


def _last_part(message: str) -> str:
    """The reason at the end of an SSH error's message (``sutA: cannot reach …: Connection refused``)."""
    return clip(tail(message.rsplit(": ", 1)[-1], 1), 70)

