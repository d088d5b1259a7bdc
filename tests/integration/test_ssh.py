"""SSH to a SUT host against a real OpenSSH server on loopback: commands, quoting, deadlines, trust, errors, SFTP."""

from __future__ import annotations

import logging
import os
import pty
import re
import select
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from farm.errors import (
    HostKeyChangedError,
    RemoteCommandError,
    RemoteTimeoutError,
    SSHAuthError,
    SSHError,
    SSHUnreachableError,
    UnknownHostKeyError,
)
from farm.remote.hostkeys import fetch_host_key, host_key_fingerprint, trust_host_key
from farm.remote.hosts import SutHost, load_hosts
from farm.remote.ssh import SSHConnection, _drain
from farm.stacks.probe import free_port
from tests.conftest import FARM, farm
from tests.integration.sshd import Sshd, make_key, sshd, write_hosts_file

pytestmark = pytest.mark.integration

NASTY = "$(touch {marker}); rm -rf \"*\" ' \n`touch {marker}` \\n ; exit 7 # ä"


@pytest.fixture(scope="module")
def server() -> Iterator[Sshd]:
    with sshd() as running:
        yield running


@pytest.fixture
def conn(server: Sshd) -> Iterator[SSHConnection]:
    with SSHConnection(server.sut_host(), connect_timeout=5) as connection:
        yield connection


def sleeping(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] == ["sleep", marker]:
            found.append(proc)
    return found


def test_run_returns_output_and_exit_codes(conn: SSHConnection) -> None:
    # When commands write to both streams and exit with a code
    result = conn.run(["sh", "-c", "echo out; echo err >&2; exit 3"], check=False)
    # Then the result holds each stream and the code
    assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert conn.run(["true"]).code == 0
    assert conn.run(["sh", "-c", 'printf %s "$A|$B"'], env={"A": "1", "B": "two words"}).stdout == "1|two words"


def test_failed_command_raises_with_its_code_and_stderr_tail(conn: SSHConnection) -> None:
    # When a checked command fails
    with pytest.raises(RemoteCommandError) as caught:
        conn.run(["sh", "-c", "for i in 1 2 3 4 5; do echo line$i >&2; done; exit 4"])
    # Then the one-line error names the host, the command, the exit code and the end of its stderr
    error = caught.value
    assert error.code == 4 and error.category == "ssh"
    assert str(error).startswith("sut: `sh -c") and "exited with 4: line3 | line4 | line5" in str(error)
    assert "\n" not in str(error) and "line1" not in str(error)


def test_metacharacters_reach_the_host_literally(conn: SSHConnection, tmp_path: Path) -> None:
    # Given an argument and an environment value full of shell syntax that would create a file if run
    marker = tmp_path / "pwned"
    nasty = NASTY.format(marker=marker)
    # When they are printed on the host
    printed = conn.run(["printf", "%s", nasty])
    from_env = conn.run(["sh", "-c", 'printf %s "$NASTY"'], env={"NASTY": nasty})
    # Then they come back byte for byte and nothing in them was executed
    assert printed.stdout == nasty and printed.code == 0
    assert from_env.stdout == nasty
    assert not marker.exists()


def test_large_output_on_both_streams_does_not_deadlock(conn: SSHConnection) -> None:
    # When a command writes 5 MB to stdout and 5 MB to stderr at the same time
    result = conn.run(["sh", "-c", "yes a | head -c 5000000 & yes b | head -c 5000000 >&2; wait"], timeout=60)
    # Then all of it arrives before the deadline (a deadlock would end in RemoteTimeoutError)
    assert len(result.stdout) == 5_000_000 and set(result.stdout) == {"a", "\n"}
    assert len(result.stderr) == 5_000_000 and set(result.stderr) == {"b", "\n"}


def test_background_child_holding_the_output_does_not_hang_the_call(conn: SSHConnection) -> None:
    # When a command exits, leaving a background child that keeps its output open for 33 s
    try:
        result = conn.run(["sh", "-c", "sleep 33.3 & echo done"], timeout=30)
        # Then the call returns once output stops, while the child still runs (not when it ends, nor at the deadline)
        assert result.stdout == "done\n"
        assert len(sleeping("33.3")) == 1
    finally:
        for child in sleeping("33.3"):
            child.kill()


def test_deadline_stops_the_remote_command(conn: SSHConnection) -> None:
    # When a command outlives its 2 s deadline
    started = time.monotonic()
    with pytest.raises(RemoteTimeoutError, match=r"sut: `sleep 30\.7` did not end within 2 s"):
        conn.run(["sleep", "30.7"], timeout=2)
    # Then the error comes at the deadline, long before the command's end, and it no longer runs on the host
    assert 1.9 < time.monotonic() - started < 20
    deadline = time.monotonic() + 2
    while sleeping("30.7") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleeping("30.7") == []
    # And the connection still works
    assert conn.run(["echo", "still here"]).stdout == "still here\n"


def test_local_deadline_closes_a_channel_that_never_ends(conn: SSHConnection) -> None:
    # Given a command started without the host-side `timeout` (as if the host ignored it)
    channel = conn._session()
    channel.exec_command("sleep 39.9")
    started = time.monotonic()
    try:
        # When its output is drained against a 1 s local deadline, Then it gives up at that deadline, while the
        # command still runs (not when it ends)
        with pytest.raises(TimeoutError):
            _drain(channel, started + 1)
        assert time.monotonic() - started > 0.9 and len(sleeping("39.9")) == 1
    finally:
        channel.close()
        for child in sleeping("39.9"):
            child.kill()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_logs_name_the_key_file_but_never_its_contents(server: Sshd, tmp_path: Path) -> None:
    # Given an application that logs everything at DEBUG from the root logger
    handler, root = _Records(), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    stranger = make_key(tmp_path / "stranger")
    try:
        # When we connect, run a command, and fail to authenticate with another key
        with SSHConnection(server.sut_host(), connect_timeout=5) as connection:
            connection.run(["true"], env={"SECRET_TOKEN": "hunter2"})
        with pytest.raises(SSHAuthError):
            SSHConnection(server.sut_host(key=stranger), connect_timeout=5).open()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    # Then the key path is logged, but no line of either private key, no environment value, no paramiko chatter
    text = "\n".join(record.getMessage() for record in handler.records)
    assert str(server.client_key) in text
    for key in (server.client_key, stranger):
        for line in key.read_text().splitlines()[1:-1]:
            assert line not in text
    assert "hunter2" not in text
    assert [r.name for r in handler.records if r.name.startswith("paramiko")] == []
    assert {r.name for r in handler.records} == {"farm.remote.ssh"}


def test_unknown_host_key_is_refused_with_its_fingerprint(server: Sshd, tmp_path: Path) -> None:
    # Given no known_hosts file, and one that knows only another host
    missing = tmp_path / "none" / "known_hosts"
    other = tmp_path / "known_hosts"
    other.write_text("[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmMtO0sIbrbD1ifUBDMIxZW9Md1T0vRyG+H7hJVp1Ma\n")
    before = other.read_bytes()
    for known_hosts in (missing, other):
        # When we connect
        with pytest.raises(UnknownHostKeyError) as caught:
            SSHConnection(server.sut_host(known_hosts=known_hosts), connect_timeout=5).open()
        # Then it is refused, showing the key's fingerprint and how to trust it
        message = str(caught.value)
        assert server.host_key_fingerprint in message and "farm hosts trust sut" in message
    # And nothing was written
    assert not missing.exists() and not missing.parent.exists()
    assert other.read_bytes() == before


def test_changed_host_key_is_refused_as_a_possible_attack(server: Sshd, tmp_path: Path) -> None:
    # Given a known_hosts that holds another key for this server's name and port
    impostor = make_key(tmp_path / "impostor")
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{server.known_hosts_name} {kind} {blob}\n")
    # When we connect
    with pytest.raises(HostKeyChangedError) as caught:
        SSHConnection(server.sut_host(known_hosts=known_hosts), connect_timeout=5).open()
    # Then it is refused, naming both fingerprints, the danger and the fix
    message = str(caught.value)
    assert server.host_key_fingerprint in message
    assert host_key_fingerprint(fetch_host_key(server.sut_host(known_hosts=known_hosts), 5)) in message
    assert "possible attack" in message and "ssh-keygen" in message and "farm hosts trust sut" in message


def test_wrong_client_key_is_an_auth_error_naming_user_and_key(server: Sshd, tmp_path: Path) -> None:
    # Given a key the server does not know, and a key file that does not exist
    stranger = make_key(tmp_path / "stranger")
    # When we connect with each
    with pytest.raises(SSHAuthError) as caught:
        SSHConnection(server.sut_host(key=stranger), connect_timeout=5).open()
    # Then the error names the user and the key file, and nothing of the key itself
    message = str(caught.value)
    assert f"user {server.user!r}" in message and str(stranger) in message
    assert stranger.read_text().split("\n")[1] not in message
    with pytest.raises(SSHAuthError, match="does not exist"):
        SSHConnection(server.sut_host(key=tmp_path / "nope"), connect_timeout=5).open()


def test_closed_port_is_unreachable_at_once(server: Sshd) -> None:
    # Given an address where nothing listens
    host = SutHost(name="gone", user="root", address="127.0.0.1", port=free_port(), key=server.client_key,
                   known_hosts=server.write_known_hosts())
    started = time.monotonic()
    # When we connect, Then it fails at once: refused, not after the 30 s connect timeout
    with pytest.raises(SSHUnreachableError, match=r"gone: cannot reach root@127\.0\.0\.1:.*refused"):
        SSHConnection(host, connect_timeout=30).open()
    assert time.monotonic() - started < 15


def test_silent_listener_fails_within_the_connect_timeout(server: Sshd) -> None:
    # Given a TCP listener that accepts but never says a word
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        host = SutHost(name="mute", user="root", address="127.0.0.1", port=listener.getsockname()[1],
                       key=server.client_key, known_hosts=server.write_known_hosts())
        started = time.monotonic()
        # When we connect with a 1.5 s timeout, Then it fails after about that long
        with pytest.raises(SSHUnreachableError, match=r"mute: no SSH answer .* within 1\.5 s"):
            SSHConnection(host, connect_timeout=1.5).open()
        assert 1.3 < time.monotonic() - started < 10  # paramiko's own banner timeout is 15 s
        started = time.monotonic()
        with pytest.raises(SSHUnreachableError):
            fetch_host_key(host, 1.5)
        assert time.monotonic() - started < 10


def test_put_tree_and_put_text_upload_files(conn: SSHConnection, tmp_path: Path) -> None:
    # Given a local folder with nested folders, an empty folder and an executable script
    local = tmp_path / "project"
    (local / "app" / "static").mkdir(parents=True)
    (local / "empty").mkdir()
    (local / "compose.yaml").write_text("services: {}\n")
    (local / "app" / "static" / "a b$(x).txt").write_text("ä\n")
    (local / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (local / "run.sh").chmod(0o755)
    remote = tmp_path / "remote" / "deep" / "deploy-1"  # the SUT host is this machine
    # When the folder is uploaded to a folder that does not exist yet, twice (a retried upload)
    conn.put_tree(local, str(remote))
    conn.put_tree(local, str(remote))
    conn.put_text(str(remote / "secret.env"), "TOKEN=x\n", mode=0o600)
    # Then every file is there with its contents and mode, and the script runs
    assert sorted(str(p.relative_to(remote)) for p in remote.rglob("*")) == [
        "app", "app/static", "app/static/a b$(x).txt", "compose.yaml", "empty", "run.sh", "secret.env"]
    assert (remote / "app" / "static" / "a b$(x).txt").read_text() == "ä\n"
    assert stat.S_IMODE((remote / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((remote / "secret.env").stat().st_mode) == 0o600
    assert conn.run([str(remote / "run.sh")]).stdout == "ran\n"


def test_fetch_and_trust_host_key(server: Sshd, tmp_path: Path) -> None:
    # Given a host whose key is not yet known
    known_hosts = tmp_path / "ssh" / "known_hosts"
    host = server.sut_host(known_hosts=known_hosts)
    # When its key is fetched and trusted
    key = fetch_host_key(host, 5)
    trust_host_key(host, key)
    # Then the fingerprint is ssh-keygen's, the file is 0600 with an [address]:port line, and connecting works
    assert host_key_fingerprint(key) == server.host_key_fingerprint
    assert stat.S_IMODE(known_hosts.stat().st_mode) == 0o600
    assert known_hosts.read_text().startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")
    with SSHConnection(host, connect_timeout=5) as connection:
        assert connection.run(["echo", "hi"]).stdout == "hi\n"


def test_connection_is_not_used_across_fork(conn: SSHConnection) -> None:
    # Given an open connection
    conn.run(["true"])
    # When a forked child tries to use it, then closes it
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            conn.run(["true"])
        except SSHError as exc:
            code = 3 if "opened in another process" in str(exc) else 2
        conn.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    # Then the child is refused, and the parent's connection is unharmed by the child's close
    assert os.waitstatus_to_exitcode(status) == 3
    assert conn.run(["echo", "parent"]).stdout == "parent\n"


def test_farm_hosts_trust(server: Sshd, tmp_path: Path) -> None:
    # Given a hosts file naming the server with a known_hosts that does not exist yet
    known_hosts = tmp_path / "known_hosts"
    hosts_file = write_hosts_file(tmp_path / "farm-hosts.yaml", {"sutA": server.hosts_entry(known_hosts=known_hosts)})
    env = {"FARM_HOSTS_FILE": str(hosts_file)}
    wrong = "SHA256:" + "A" * 43
    # When trusted with a wrong fingerprint, Then it refuses (exit 2) and writes nothing
    refused = farm("hosts", "trust", "sutA", "--fingerprint", wrong, cwd=tmp_path, env=env, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert server.host_key_fingerprint in refused.stdout + refused.stderr and wrong in refused.stderr
    assert not known_hosts.exists()
    # And without a terminal and without --fingerprint it does not ask, and writes nothing
    unasked = farm("hosts", "trust", "sutA", cwd=tmp_path, env=env, timeout=60)
    assert unasked.returncode == 2 and "--fingerprint" in unasked.stderr and not known_hosts.exists()
    # When trusted with the right fingerprint, Then the key is added and connecting works
    trusted = farm("hosts", "trust", "sutA", "--fingerprint", server.host_key_fingerprint, cwd=tmp_path, env=env,
                   timeout=60)
    assert trusted.returncode == 0, trusted.stderr
    assert "trusted: added to" in trusted.stdout
    SSHConnection(load_hosts(hosts_file)["sutA"], connect_timeout=5).open().close()
    # And a second time it is already trusted, the file unchanged
    before = known_hosts.read_bytes()
    again = farm("hosts", "trust", "sutA", "--fingerprint", server.host_key_fingerprint, cwd=tmp_path, env=env,
                 timeout=60)
    assert again.returncode == 0 and "already trusted" in again.stdout and known_hosts.read_bytes() == before


def test_farm_hosts_trust_asks_on_a_terminal(server: Sshd, tmp_path: Path) -> None:
    # Given a hosts file naming the server with an empty known_hosts, and `farm hosts trust` on a terminal
    known_hosts = tmp_path / "known_hosts"
    hosts_file = write_hosts_file(tmp_path / "farm-hosts.yaml", {"sutA": server.hosts_entry(known_hosts=known_hosts)})
    for answer, code in (("n", 1), ("y", 0)):
        primary, secondary = pty.openpty()
        proc = subprocess.Popen([*FARM, "hosts", "trust", "sutA"], stdin=secondary, stdout=secondary,
                                stderr=secondary, cwd=tmp_path, env={**os.environ, "FARM_HOSTS_FILE": str(hosts_file)})
        os.close(secondary)
        # When it asks and is answered
        screen = _read_until(primary, b"Trust it")
        os.write(primary, answer.encode() + b"\n")
        assert proc.wait(timeout=30) == code
        screen += _read_until(primary, b"")
        os.close(primary)
        # Then the fingerprint was shown before the question, and only "y" trusted it
        assert server.host_key_fingerprint.encode() in screen and b"[y/N]" in screen
        assert known_hosts.exists() == (answer == "y"), screen


def _read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (not marker or marker not in seen):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk
        elif not marker:
            break
    return seen


def test_farm_hosts_list_and_check(server: Sshd, tmp_path: Path) -> None:
    # Given a hosts file with a good host (Docker pointed at a socket that does not exist), a host whose key is
    # unknown, and a host where nothing listens
    entries = {
        "good": server.hosts_entry(docker_host=f"unix://{tmp_path}/no-docker.sock", workdir="/tmp/loadfarm-test"),
        "stranger": server.hosts_entry(known_hosts=tmp_path / "empty_known_hosts"),
        "gone": {**server.hosts_entry(), "ssh": f"root@127.0.0.1:{free_port()}"},
    }
    hosts_file = write_hosts_file(tmp_path / "farm-hosts.yaml", entries)
    env = {"FARM_HOSTS_FILE": str(hosts_file), "COLUMNS": "250"}
    # When they are listed
    listed = farm("hosts", "list", cwd=tmp_path, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in entries) and server.target in listed.stdout
    # When they are checked
    checked = farm("hosts", "check", cwd=tmp_path, env=env, timeout=60)
    # Then the table shows each host's state (the one where nothing listens refused at once, not timed out), and
    # the command fails since none is usable
    assert checked.returncode == 1, checked.stderr
    assert checked.stderr == ""  # no traceback, no paramiko chatter
    text = checked.stdout
    lines = {line.split(" ")[0]: line for line in text.splitlines() if " is unusable: " in line}
    docker_reason = "docker: not found" if not _docker_installed() else "docker: "
    assert docker_reason in lines["good"], text
    assert "host key: unknown; if it is the host's, run farm hosts trust stranger" in lines["stranger"], text
    assert "ssh: cannot reach root@127.0.0.1" in lines["gone"] and "Connection refused" in lines["gone"], text
    good_row = next(line for line in text.splitlines() if line.startswith("│ good "))
    assert re.search(r"│ ok +│ ok +│ ok +│", good_row), good_row
    assert len(re.findall(r"\d+\.\d GiB", text)) == 2 and " s ±" in text, text
    # And a subset can be checked by name; an unknown name is bad input
    assert farm("hosts", "check", "nobody", cwd=tmp_path, env=env, timeout=60).returncode == 2


def _docker_installed() -> bool:
    import shutil

    return shutil.which("docker") is not None


@pytest.mark.parametrize(("startup", "column", "usable"), [
    ("echo 'Welcome to pyenv'", ("start-up prints: 'Welcome to pyenv'", False), False),
    ("sleep 2", ("start-up takes", None), True),
    ("echo 'pyenv: command not found' >&2", ("start-up writes to stderr: 'pyenv: command not found'", None), True),
])
def test_farm_hosts_check_names_a_login_shell_whose_start_up_prints_or_dawdles(
        tmp_path: Path, startup: str, column: tuple[str, bool | None], usable: bool) -> None:
    from farm.remote.check import check_host

    # Given a SUT host whose account's ~/.bashrc (read by bash for every command over SSH) does something
    (tmp_path / ".bashrc").write_text(startup + "\n")
    docker = shutil.which("docker") is not None and os.path.exists("/var/run/docker.sock")
    with sshd(env={"SHLVL": "0", "HOME": str(tmp_path)}) as server:  # shell level 1 once bash starts: it reads it
        # When it is checked
        report = check_host(server.sut_host("noisy"), connect_timeout=10)
    # Then the shell column says what its start-up does, and printing makes the host unusable
    shell = report.outcomes["shell"]
    assert column[0] in shell.text and shell.ok is column[1], report.outcomes
    if not usable:
        assert report.problem is not None and report.problem.startswith("shell: start-up prints"), report.problem
    elif docker:
        assert report.usable, report.problem
