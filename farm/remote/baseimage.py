"""The offline base image: a Debian root filesystem built with debootstrap, tarred, then `docker import`ed.

A SUT host in a lab often cannot pull from a registry. Stack Dockerfiles take their base as a build argument
(`ARG BASE=python:3.12-slim` / `FROM ${BASE}`); the offline path builds `BASE_IMAGE` from Debian packages on the
controller and imports it on the host, so `docker build --build-arg BASE=loadfarm/base:bookworm` needs no registry.

One image serves every built-in stack (one tarball to build, one import per host): the shop's Python and the
WordPress stack's MariaDB, PHP-FPM and Debian's wordpress share nginx, Redis and the Debian base.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from farm.errors import ProvisionError, ToolMissingError

BASE_IMAGE = "loadfarm/base:bookworm"
SUITE = "bookworm"
# The shop stack needs python3 with aiohttp and redis, nginx and redis-server; curl and procps for health checks.
# The WordPress stack adds MariaDB (server and client, for the `SELECT 1` health check), PHP-FPM with the
# object caches' extensions (APCu, Redis) and nginx's stream module (an instance reaches the shared Redis
# through it); Debian's wordpress and its default theme come in APT_PACKAGES.
BASE_PACKAGES = ["python3", "python3-aiohttp", "python3-redis", "nginx-light", "redis-server", "curl",
                 "ca-certificates", "procps", "mariadb-server", "mariadb-client", "php-fpm", "php-cli", "php-mysql",
                 "php-apcu", "php-redis", "libnginx-mod-stream"]
# Installed by apt inside the new root after debootstrap, one at a time in this order, without recommends:
# debootstrap resolves a dependency's alternatives by taking the first, and Debian's wordpress depends on
# `apache2 | httpd` and `libapache2-mod-php | php` (Apache and its PHP module, ~40 MB); apt takes the alternative
# already installed (nginx, php-fpm).
APT_PACKAGES = ["php", "wordpress", "wordpress-theme-twentytwentythree"]
BUILD_RECIPE = "3"  # in the cache key: a change to how the root is built (not only what) must rebuild it
LABEL = "org.loadfarm.base"  # the image label holding the tarball's cache key (is the host's image current?)
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BUILD_TIMEOUT_S = 1800.0
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def cache_key(packages: list[str], suite: str = SUITE, late: tuple[str, ...] = ()) -> str:
    """The tarball's cache key: a hash of the suite, the sorted, de-duplicated package list, the packages apt adds
    afterwards (in order) and the build recipe's version."""
    text = "\n".join([f"suite={suite}", "variant=minbase", *sorted(set(packages))])
    if late:  # keys of a plain debootstrap stay what they were
        text += "\n" + "\n".join([f"recipe={BUILD_RECIPE}", *(f"apt={p}" for p in late)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def debian_mirror(suite: str = SUITE, sources: tuple[Path, ...] = _SOURCES) -> str:
    """The Debian mirror this machine's apt uses for ``suite`` (one-line and deb822 sources), or the default."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(p for p in source.iterdir() if p.suffix in (".list", ".sources"))
        elif source.is_file():
            files.append(source)
    for path in files:
        found = _mirror_in(path.read_text(errors="replace"), suite, deb822=path.suffix == ".sources")
        if found:
            return found
    return DEFAULT_MIRROR


def _mirror_in(text: str, suite: str, *, deb822: bool) -> str | None:
    # a comment line is dropped, not blanked: in deb822 a blank line ends the stanza
    lines = [line.split("#", 1)[0].rstrip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    if not deb822:
        for line in lines:
            words = re.sub(r"\[[^]]*\]", " ", line).split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                return words[1].rstrip("/")
        return None
    for stanza in "\n".join(lines).split("\n\n"):
        fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] not in " \t")
        fields = {key.strip().lower(): value.strip() for key, value in fields.items()}
        if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
            uris = fields.get("uris", "").split()
            if uris:
                return uris[0].rstrip("/")
    return None


def rootfs_tarball(cache_dir: Path, packages: list[str] | None = None, *, late: list[str] | None = None,
                   suite: str = SUITE, mirror: str | None = None, timeout_s: float = BUILD_TIMEOUT_S) -> Path:
    """A gzipped Debian ``suite`` minbase root filesystem with ``packages`` (debootstrap), then ``late`` (apt, in
    order), built once and cached in ``cache_dir``; by default the base image's packages."""
    wanted = sorted(set(BASE_PACKAGES if packages is None else packages))
    after = tuple(dict.fromkeys(APT_PACKAGES if packages is None and late is None else late or []))
    bad = [p for p in [*wanted, *after] if not _PACKAGE_NAME.match(p)]
    if bad:
        raise ProvisionError(f"not a Debian package name: {bad[0]!r}", hint="use names like python3-aiohttp")
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{suite}-{cache_key(wanted, suite, after)}.tar.gz"
    if target.is_file():
        return target
    with _locked(cache_dir / ".lock"):  # another process may be building the same tarball
        if not target.is_file():
            _build(target, wanted, after, suite, mirror or debian_mirror(suite), timeout_s)
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(target: Path, packages: list[str], late: tuple[str, ...], suite: str, mirror: str,
           timeout_s: float) -> None:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ToolMissingError("debootstrap is not installed", hint="apt-get install debootstrap")
    if os.geteuid() != 0:
        raise ProvisionError("building the base image needs root (debootstrap)", hint="run as root or use sudo")
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    root = work / "rootfs"
    try:
        argv = [debootstrap, "--variant=minbase", f"--include={','.join(packages)}", suite, str(root), mirror]
        for attempt in (1, 2):  # once more after a failure: a mirror's hiccup should not fail a CI run
            try:
                _run(argv, "debootstrap", timeout_s)
                break
            except ProvisionError:
                _unmount_under(root)
                shutil.rmtree(root, ignore_errors=True)
                if attempt == 2:
                    raise
        if late:
            _apt_install(root, late, timeout_s)
        _clean(root)
        partial = work / target.name
        _run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-czf", str(partial), "."], "tar", timeout_s)
        partial.replace(target)
    finally:
        _unmount_under(root)
        shutil.rmtree(work, ignore_errors=True)


def _apt_install(root: Path, packages: tuple[str, ...], timeout_s: float) -> None:
    """apt-get install each package in the new root, in order, without recommends and without starting services."""
    policy = root / "usr/sbin/policy-rc.d"  # a package's postinst must not start its daemon on the build host
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key.lower() in ("http_proxy", "https_proxy", "no_proxy")}
    env.update(DEBIAN_FRONTEND="noninteractive", LANG="C.UTF-8", PATH="/usr/sbin:/usr/bin:/sbin:/bin")
    apt = ["chroot", str(root), "apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0"]
    try:
        _run([*apt, "update"], "apt-get update in the new root", timeout_s, env)
        for package in packages:  # one by one: each later package's alternatives see the earlier ones installed
            _run([*apt, "install", "--no-install-recommends", package], f"apt-get install {package}", timeout_s, env)
    finally:
        policy.unlink(missing_ok=True)


def _run(argv: list[str], what: str, timeout_s: float, env: dict[str, str] | None = None) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{what} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["no output"]
        errors = [line for line in lines if line.startswith("E:")]  # debootstrap's and apt's own error lines
        raise ProvisionError(f"{what} failed (exit {done.returncode}): {(errors or lines)[-1]}")


def _clean(root: Path) -> None:
    """Drop apt's caches and lists, documentation, logs and the build host's identity from the root filesystem."""
    # var/lib/mysql: the datadir mariadb-server's postinst initialised (~110 MB); a stack initialises its own
    for folder in ("var/cache/apt", "var/lib/apt/lists", "tmp", "usr/share/man", "usr/share/info", "var/lib/mysql"):
        for child in (root / folder).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    for doc in (root / "usr/share/doc").rglob("*"):  # keep each package's copyright
        if doc.is_file() and not doc.is_symlink() and doc.name != "copyright":
            doc.unlink()
    for log in (root / "var/log").rglob("*"):  # keep the folders: nginx and redis refuse to start without theirs
        if log.is_file() and not log.is_symlink():
            log.unlink()
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    for name in ("etc/hostname", "etc/machine-id"):
        path = root / name
        if path.exists():
            path.write_text("")


def _unmount_under(root: Path) -> None:
    """Unmount whatever a failed debootstrap left mounted under ``root`` (proc, sys), deepest first."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1].replace("\\040", " ") for line in handle]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def import_command(tarball: str, image: str = BASE_IMAGE, key: str | None = None) -> list[str]:
    """The `docker import` argv that turns an uploaded rootfs tarball into ``image`` on a SUT host."""
    changes = ["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]']
    if key:
        changes.append(f"LABEL {LABEL}={key}")
    return ["docker", "import", *[arg for change in changes for arg in ("--change", change)], tarball, image]


def tarball_key(tarball: Path) -> str:
    """The cache key a tarball made by ``rootfs_tarball`` carries in its name (the image's label value)."""
    return tarball.name.removesuffix(".tar.gz").rsplit("-", 1)[-1]
