"""The hosts file (FARM_HOSTS_FILE): SUT hosts read into SutHost values, or one SpecError line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import NotFoundError, SpecError
from farm.remote.hosts import SutHost, load_hosts, parse_target, select_hosts
from farm.remote.ssh import build_command


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "farm-hosts.yaml"
    path.write_text(text)
    return path


def test_full_entry_is_read_with_paths_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a hosts file with every field, a ~ path and a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write(tmp_path, 'sut_hosts:\n  sutA: {ssh: "farm@10.0.0.5:2222", key: ~/.ssh/id_ed25519,\n'
                           '         known_hosts: keys/known, docker_host: "unix:///run/x.sock", workdir: /srv/lf/}\n')
    # When it is loaded
    hosts = load_hosts(path)
    # Then every field is there, ~ is the home folder and the relative path hangs off the file's folder
    assert hosts == {"sutA": SutHost(name="sutA", user="farm", address="10.0.0.5", port=2222,
                                     key=tmp_path / "home/.ssh/id_ed25519", known_hosts=tmp_path / "keys/known",
                                     docker_host="unix:///run/x.sock", workdir="/srv/lf")}
    assert hosts["sutA"].known_hosts_name == "[10.0.0.5]:2222"
    assert hosts["sutA"].target == "farm@10.0.0.5:2222"


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an entry with only ssh (no port)
    monkeypatch.setenv("HOME", str(tmp_path))
    host = load_hosts(write(tmp_path, "sut_hosts:\n  b: {ssh: deploy@sut-b.lab.example}\n"))["b"]
    # Then port 22, no key (agent / default keys), ~/.ssh/known_hosts, the default workdir, no DOCKER_HOST
    assert (host.user, host.address, host.port, host.key) == ("deploy", "sut-b.lab.example", 22, None)
    assert host.known_hosts == tmp_path / ".ssh/known_hosts"
    assert (host.workdir, host.docker_host) == ("~/.loadfarm", None)
    assert host.known_hosts_name == "sut-b.lab.example"


def test_ipv6_target() -> None:
    assert parse_target("farm@[::1]:2200") == ("farm", "::1", 2200)
    host = SutHost(name="v6", user="farm", address="::1", port=22, key=None, known_hosts=Path("/k"))
    assert host.target == "farm@[::1]:22"


def test_missing_file_says_how_to_write_one(tmp_path: Path) -> None:
    # When the file does not exist
    with pytest.raises(SpecError) as caught:
        load_hosts(tmp_path / "farm-hosts.yaml")
    # Then the one-line message names the file and shows an example
    message = str(caught.value)
    assert str(tmp_path / "farm-hosts.yaml") in message and "sut_hosts:" in message and "ssh:" in message
    assert "FARM_HOSTS_FILE" in message
    assert "\n" not in message.replace("\\n", "")


@pytest.mark.parametrize(("text", "expected"), [
    ("sut_hosts:\n  a: {ssh: farm@h, colour: red}\n", "sut_hosts.a.colour: unknown field"),
    ("sut_hosts:\n  a: {key: /k}\n", "sut_hosts.a.ssh: required"),
    ("sut_hosts:\n  a: {ssh: '10.0.0.5'}\n", "sut_hosts.a.ssh: expected USER@ADDRESS[:PORT]"),
    ("sut_hosts:\n  a: {ssh: 'farm@10.0.0.5:0'}\n", "sut_hosts.a.ssh: port 0 is out of range"),
    ("sut_hosts:\n  a: {ssh: 'farm@10.0.0.5:99999'}\n", "port 99999 is out of range"),
    ("sut_hosts:\n  a: {ssh: 'farm@bad_host!'}\n", "sut_hosts.a.ssh: 'bad_host!' is neither"),
    ("sut_hosts:\n  a: {ssh: '-oProxyCommand=x@h'}\n", "sut_hosts.a.ssh: '-oProxyCommand=x' is not a user"),
    ("sut_hosts:\n  a: {ssh: 'farm@-oProxyCommand=x'}\n", "is neither an IP address nor a host name"),
    ("sut_hosts:\n  a: {ssh: 'farm@[zz::1]'}\n", "[zz::1] is not an IPv6 address"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: tmp/x}\n", "sut_hosts.a.workdir: expected an absolute folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /}\n", "sut_hosts.a.workdir"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /tmp/../etc}\n", "sut_hosts.a.workdir"),
    ("sut_hosts:\n  a: {ssh: farm@h, docker_host: 'ssh://farm@h'}\n", "sut_hosts.a.docker_host: expected unix://"),
    ("sut_hosts:\n  a: {ssh: farm@h, key: 42}\n", "sut_hosts.a.key: expected a non-empty line of text"),
    ("sut_hosts:\n  a: {ssh: \"farm@h\\n\"}\n", "sut_hosts.a.ssh: expected a non-empty line of text"),
    ("sut_hosts:\n  'bad name': {ssh: farm@h}\n", "sut_hosts.bad name: a host name is"),
    ("sut_hosts:\n  a: farm@h\n", "sut_hosts.a: expected a mapping"),
    ("sut_hosts: {}\n", "sut_hosts: expected a mapping of host names"),
    ("hosts:\n  a: {ssh: farm@h}\n", "expected a mapping with a 'sut_hosts' key"),
    ("sut_hosts:\n  a: {ssh: farm@h}\nextra: 1\n", "extra: unknown key"),
    ("- just a list\n", "expected a mapping with a 'sut_hosts' key"),
    ("sut_hosts: {a: [\n", "not valid YAML"),
    ("sut_hosts:\n  a: {ssh: farm@h1}\n  a: {ssh: farm@h2}\n", "line 3: 'a' appears twice in the same mapping"),
    ("sut_hosts:\n  a: {ssh: farm@h1, ssh: farm@h2}\n", "'ssh' appears twice"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /etc}\n", "sut_hosts.a.workdir: /etc is a system folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /usr/local/lf}\n", "/usr/local/lf is a system folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /tmp}\n", "/tmp is a system folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /home/}\n", "/home is a system folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /proc/self}\n", "/proc/self is a system folder"),
    ("sut_hosts:\n  a: {ssh: farm@h, workdir: /var/lib/docker/volumes}\n", "is a system folder"),
])
def test_bad_input_is_one_line_naming_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    # Given a hosts file with one mistake
    path = write(tmp_path, text)
    # When it is loaded
    with pytest.raises(SpecError) as caught:
        load_hosts(path)
    # Then the error is one line naming the file and the field at fault
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_select_hosts(tmp_path: Path) -> None:
    hosts = load_hosts(write(tmp_path, "sut_hosts:\n  a: {ssh: farm@h1}\n  b: {ssh: farm@h2}\n"))
    assert [h.name for h in select_hosts(hosts, None)] == ["a", "b"]
    assert [h.name for h in select_hosts(hosts, ["b", "b"])] == ["b"]
    with pytest.raises(NotFoundError, match=r"no SUT host named 'c'.*known: a, b"):
        select_hosts(hosts, ["c"])


def test_commands_quote_every_value() -> None:
    # Given an argument and an environment value full of shell metacharacters
    nasty = "$(touch /tmp/x); rm -rf \"*\" ' \n`id`"
    line = build_command(["printf", "%s", nasty], timeout=2.5, env={"V": nasty})
    # Then the line is timeout + env + argv, each word quoted so that a POSIX shell reads back exactly these words
    import shlex

    assert shlex.split(line) == ["timeout", "--kill-after=5", "2.500s", "env", f"V={nasty}", "printf", "%s", nasty]
    with pytest.raises(ValueError, match="not an environment variable name"):
        build_command(["true"], timeout=1, env={"A;B": "x"})
    with pytest.raises(ValueError, match="not a string"):
        build_command("rm -rf /", timeout=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_hosts_file_that_is_no_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    import os
    import threading

    # Given a hosts file that is a FIFO nobody writes to, /dev/zero, or a folder (reading any of them hung)
    path = tmp_path / "farm-hosts.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path.mkdir()
    # When it is loaded (in a thread, so that a hang fails the test instead of stopping it)
    caught: list[BaseException] = []
    reader = threading.Thread(target=lambda: caught.append(_refusal(path)), daemon=True)
    reader.start()
    reader.join(10)
    # Then it is refused at once, in one line naming the file and what it is
    assert not reader.is_alive(), "load_hosts hung"
    [error] = caught
    assert isinstance(error, SpecError) and str(error).startswith(f"{path}: cannot read the hosts file: "), error
    assert "not a regular file" in str(error) or "Is a directory" in str(error), error


def _refusal(path: Path) -> BaseException:
    try:
        load_hosts(path)
    except BaseException as exc:  # handed to the test's thread
        return exc
    return AssertionError("accepted")


def test_a_fifo_as_sweep_file_or_stack_manifest_is_refused_too(tmp_path: Path) -> None:
    import os

    from farm.spec import load_sweep
    from farm.stacks.manifest import load_manifest

    os.mkfifo(tmp_path / "sweep.yaml")
    os.mkfifo(tmp_path / "stack.yaml")
    with pytest.raises(SpecError, match="not a regular file"):
        load_sweep(tmp_path / "sweep.yaml")
    with pytest.raises(SpecError, match="not a regular file"):
        load_manifest(tmp_path)


def test_an_ipv6_sut_host_is_bracketed_in_urls() -> None:
    from farm.stacks.driver import Endpoint

    assert Endpoint("app", 0, "fd00::5", 8080).url == "http://[fd00::5]:8080"
    assert Endpoint("app", 0, "10.0.0.5", 8080).url == "http://10.0.0.5:8080"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_private_key_open_to_group_or_others_is_refused_as_ssh_does(tmp_path: Path, mode: int) -> None:
    from farm.errors import SSHAuthError
    from farm.remote.ssh import SSHConnection

    # Given a key file that group or others may read
    key = tmp_path / "id_ed25519"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    key.chmod(mode)
    host = SutHost(name="a", user="farm", address="127.0.0.1", port=9, key=key, known_hosts=tmp_path / "known")
    # When the farm connects with it, then it refuses before any network traffic, saying how to fix it
    with pytest.raises(SSHAuthError) as caught:
        SSHConnection(host, connect_timeout=1).open()
    assert f"open to group or others (mode {mode:04o})" in str(caught.value)
    assert caught.value.hint == f"chmod 600 {key}"
