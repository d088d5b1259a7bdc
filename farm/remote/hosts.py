"""The lab's SUT hosts: the hosts file (``FARM_HOSTS_FILE``) read into `SutHost` values.

The file names each machine a stack may run on and how to reach it over SSH::

    sut_hosts:
      sutA: {ssh: "farm@10.0.0.5:22", key: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts,
             docker_host: "unix:///run/docker.sock", workdir: /var/lib/loadfarm}

Only ``ssh`` is required. Paths start with ``~`` or are taken relative to the hosts file's own folder.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.bounded_yaml import load_bounded
from farm.errors import NotFoundError, SpecError
from farm.files import read_regular
from farm.text import clip, printable

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
DEFAULT_WORKDIR = "~/.loadfarm"  # the SSH user's home; checked and created 0700 by farm.remote.uploads
MAX_FILE_BYTES = 1 << 20
EXAMPLE = ('sut_hosts:\n  sutA: {ssh: "farm@10.0.0.5:22", key: ~/.ssh/id_ed25519, '
           "known_hosts: ~/.ssh/known_hosts}")

_FIELDS = ("ssh", "key", "known_hosts", "docker_host", "workdir", "bind")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_TARGET = re.compile(r"(?P<user>[^@\s]+)@(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\s\[\]]+))(?::(?P<port>[0-9]+))?")
_DOCKER_HOST = re.compile(r"(unix://|tcp://)[^\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class SutHost:
    """One machine a stack under test may run on, and how to reach it over SSH."""

    name: str
    user: str
    address: str
    port: int
    key: Path | None  # private key file; None: ssh-agent and the default keys
    known_hosts: Path  # the only host keys trusted for this host
    docker_host: str | None = None  # DOCKER_HOST for commands run there; None: the daemon's default socket
    workdir: str = DEFAULT_WORKDIR  # deployments are uploaded below this folder there
    bind: str | None = None  # the address its services publish on; None: the one the generator reached it by

    @property
    def target(self) -> str:
        """``user@address:port`` as written in the hosts file (IPv6 addresses in brackets)."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{address}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """The host's name in a known_hosts file: ``address`` on port 22, else ``[address]:port``."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def load_hosts(path: Path) -> dict[str, SutHost]:
    """The SUT hosts named in the hosts file at ``path``; `SpecError` naming the file and field on bad input."""
    try:
        data = read_regular(path, MAX_FILE_BYTES)
        if len(data) > MAX_FILE_BYTES:
            raise SpecError(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB; a hosts file is a short list")
        text = data.decode("utf-8")
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: no hosts file; write one naming your SUT hosts, e.g. {EXAMPLE!r}",
                        hint="or point FARM_HOSTS_FILE at it") from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"{path}: cannot read the hosts file: {reason}") from exc
    try:
        raw = load_bounded(text)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return parse_hosts(raw, path)


def parse_hosts(raw: Any, path: Path) -> dict[str, SutHost]:
    """The SUT hosts of a hosts file's parsed YAML; ``path`` names the file in messages and anchors relative paths."""
    if not isinstance(raw, dict) or "sut_hosts" not in raw:
        raise SpecError(f"{path}: expected a mapping with a 'sut_hosts' key, e.g. {EXAMPLE!r}")
    extra = [str(k) for k in raw if k != "sut_hosts"]
    if extra:
        raise SpecError(f"{path}: {clip(printable(extra[0]))}: unknown key; the hosts file holds only 'sut_hosts'")
    hosts = raw["sut_hosts"]
    if not isinstance(hosts, dict) or not hosts:
        raise SpecError(f"{path}: sut_hosts: expected a mapping of host names to hosts, e.g. {EXAMPLE!r}")
    return {str(name): _host(str(name), entry, path) for name, entry in hosts.items()}


def select_hosts(hosts: dict[str, SutHost], names: list[str] | None) -> list[SutHost]:
    """The hosts of the given names (all when none are given); `NotFoundError` for an unknown name."""
    if not names:
        return list(hosts.values())
    unknown = [n for n in names if n not in hosts]
    if unknown:
        raise NotFoundError(f"no SUT host named {clip(printable(unknown[0]))!r} in the hosts file",
                            hint=f"known: {', '.join(hosts)}")
    return [hosts[n] for n in dict.fromkeys(names)]


def parse_target(text: str) -> tuple[str, str, int]:
    """``(user, address, port)`` from ``user@address[:port]``; ValueError saying what is wrong."""
    match = _TARGET.fullmatch(text)
    if match is None:
        raise ValueError("expected USER@ADDRESS[:PORT], e.g. farm@10.0.0.5:22")
    user, port = match["user"], int(match["port"] or 22)
    if not _USER.fullmatch(user):
        raise ValueError(f"{user!r} is not a user name (letters, digits, '_', '.', '-'; not starting with '-')")
    if match["ipv6"] is not None:
        try:
            address = str(ipaddress.IPv6Address(match["ipv6"]))
        except ValueError as exc:
            raise ValueError(f"[{match['ipv6']}] is not an IPv6 address") from exc
    else:
        address = match["host"]
        if not _HOSTNAME.fullmatch(address):
            raise ValueError(f"{address!r} is neither an IP address nor a host name")
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (1-65535)")
    return user, address, port


def _host(name: str, entry: Any, path: Path) -> SutHost:
    where = f"{path}: sut_hosts.{clip(printable(name))}"
    if not _NAME.fullmatch(name):
        raise SpecError(f"{where}: a host name is 1-63 letters, digits, '.', '_' or '-', starting with a letter "
                        "or digit")
    if not isinstance(entry, dict):
        raise SpecError(f"{where}: expected a mapping with at least 'ssh', e.g. {{ssh: \"farm@10.0.0.5:22\"}}")
    unknown = [str(k) for k in entry if k not in _FIELDS]
    if unknown:
        raise SpecError(f"{where}.{clip(printable(unknown[0]))}: unknown field; known: {', '.join(_FIELDS)}")
    values: dict[str, str] = {}
    for field in _FIELDS:
        value = entry.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
            raise SpecError(f"{where}.{field}: expected a non-empty line of text")
        values[field] = value.strip()
    if "ssh" not in values:
        raise SpecError(f"{where}.ssh: required: USER@ADDRESS[:PORT], e.g. farm@10.0.0.5:22")
    try:
        user, address, port = parse_target(values["ssh"])
    except ValueError as exc:
        raise SpecError(f"{where}.ssh: {exc}") from exc
    docker_host = values.get("docker_host")
    if docker_host is not None and not _DOCKER_HOST.fullmatch(docker_host):
        raise SpecError(f"{where}.docker_host: expected unix:///PATH or tcp://HOST:PORT (the farm runs Docker "
                        "on the host itself, never over ssh://)")
    workdir = values.get("workdir", DEFAULT_WORKDIR)
    normal = posixpath.normpath(workdir)
    home = workdir.startswith("~/") and normal != "~"
    if not (workdir.startswith("/") or home) or normal == "/" or ".." in workdir.split("/"):
        raise SpecError(f"{where}.workdir: expected an absolute folder other than /, or one below the SSH user's "
                        "home (~/…), without '..', e.g. /var/lib/loadfarm")
    if not home and _system_folder(normal):
        raise SpecError(f"{where}.workdir: {normal} is a system folder; the farm makes its workdir private and "
                        "removes deployments below it — name a folder of its own, e.g. /srv/loadfarm")
    bind = values.get("bind")
    if bind is not None:
        try:
            bind = str(ipaddress.ip_address(bind))
        except ValueError as exc:
            raise SpecError(f"{where}.bind: expected the IP address the host's services listen on, "
                            "e.g. 10.0.0.5") from exc
        if ipaddress.ip_address(bind).is_unspecified:
            raise SpecError(f"{where}.bind: {bind} is every address; name the host's lab address, e.g. 10.0.0.5")
    key = values.get("key")
    return SutHost(name=name, user=user, address=address, port=port, bind=bind,
                   key=_local_path(key, path) if key is not None else None,
                   known_hosts=_local_path(values.get("known_hosts", DEFAULT_KNOWN_HOSTS), path),
                   docker_host=docker_host, workdir=normal)


# Folders the system owns: no workdir inside them; and shared folders that cannot be one themselves (the farm
# makes its workdir 0700 and owned by the SSH user).
_SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
                 "/sys", "/usr", "/var/run", "/var/lock")
_SHARED = ("/home", "/root", "/tmp", "/var", "/var/lib", "/var/tmp", "/var/log", "/var/cache", "/var/spool", "/srv",
           "/opt", "/mnt", "/media", "/snap", "/var/lib/docker")


def _system_folder(folder: str) -> bool:
    return folder in _SHARED or any(folder == top or folder.startswith(top + "/") for top in _SYSTEM_TREES) or \
        folder.startswith("/var/lib/docker/")


def open_key_mode(key: Path) -> int | None:
    """The mode of a private key file that group or others may access (ssh refuses such a key), else None."""
    try:
        mode = key.stat().st_mode & 0o777
    except OSError:
        return None  # a missing key is said where it is loaded
    return mode if mode & 0o077 else None


def _local_path(text: str, hosts_file: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (hosts_file.parent / path).absolute()


def check_sweep_hosts(hosts: list[str], path: Path, *, required: bool) -> None:
    """Refuse a sweep whose `sut.hosts` are not in the hosts file (when the file must exist here, or exists)."""
    if not required and not path.is_file():
        return  # a controller need not hold the generators' hosts file
    known = load_hosts(path)
    missing = [h for h in hosts if h not in known]
    if missing:
        raise SpecError(f"sut.hosts: {', '.join(missing)} not in {path}; known: {', '.join(known) or 'none'}",
                        hint="add it to the hosts file (FARM_HOSTS_FILE), or fix the name")
