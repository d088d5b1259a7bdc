"""The offline base image's pure parts: the apt mirror, the cache key and cache hit, the `docker import` argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farm.errors import ProvisionError
from farm.remote.baseimage import (
    APT_PACKAGES,
    BASE_IMAGE,
    BASE_PACKAGES,
    DEFAULT_MIRROR,
    LABEL,
    cache_key,
    debian_mirror,
    import_command,
    rootfs_tarball,
    tarball_key,
)

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_is_read_from_deb822_sources(tmp_path: Path) -> None:
    # Given a deb822 sources folder naming a mirror for bookworm (and a commented-out snapshot URL)
    (tmp_path / "debian.sources").write_text(DEB822)
    # When the mirror for bookworm is looked up
    # Then it is the stanza's URI without its trailing slash, not the comment nor the security suite
    assert debian_mirror("bookworm", (tmp_path / "none.list", tmp_path)) == "http://mirror.example/debian"
    assert debian_mirror("bookworm-security", (tmp_path,)) == "http://mirror.example/debian-security"


def test_mirror_is_read_from_one_line_sources_with_options(tmp_path: Path) -> None:
    # Given a one-line sources.list with options in brackets, and a commented-out line before it
    sources = tmp_path / "sources.list"
    sources.write_text("# deb http://old.example/debian bookworm main\n"
                       "deb [arch=amd64 signed-by=/k.gpg] http://lab.example/debian/ bookworm main\n")
    # When / Then the live line's mirror is found; a suite no line names falls back to Debian's default
    assert debian_mirror("bookworm", (sources,)) == "http://lab.example/debian"
    assert debian_mirror("trixie", (sources,)) == DEFAULT_MIRROR


def test_cache_key_ignores_order_and_duplicates_but_not_the_suite() -> None:
    # Given the same packages in another order, repeated
    # When / Then the key is the same; another package or suite changes it
    assert cache_key(["b", "a", "a"]) == cache_key(["a", "b"])
    assert cache_key(["a", "b"]) != cache_key(["a", "b", "c"])
    assert cache_key(["a"], "bookworm") != cache_key(["a"], "trixie")


def test_packages_apt_adds_afterwards_change_the_key_by_order_and_keep_plain_keys() -> None:
    # Given the same debootstrap packages with and without packages apt installs after, in either order
    plain, late = cache_key(["a", "b"]), cache_key(["a", "b"], late=("php", "wordpress"))
    # When / Then the late packages change the key, their order matters (each sees the ones before it
    # installed), and a key without them is the one it always was
    assert late != plain and late != cache_key(["a", "b"], late=("wordpress", "php"))
    assert plain == cache_key(["b", "a"], late=())


def test_a_cached_tarball_is_returned_at_once_without_building(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cache folder that already holds the tarball for the default packages, and no debootstrap at all
    cached = tmp_path / f"bookworm-{cache_key(BASE_PACKAGES, late=tuple(APT_PACKAGES))}.tar.gz"
    cached.write_bytes(b"rootfs")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    # When the tarball is asked for
    found = rootfs_tarball(tmp_path)
    # Then the cached file comes back without a build (there is no debootstrap to run), and its name carries the
    # key the image is labelled with
    assert found == cached
    assert tarball_key(found) == cache_key(BASE_PACKAGES, late=tuple(APT_PACKAGES))


def test_a_package_name_that_is_not_debian_is_refused_before_anything_runs(tmp_path: Path) -> None:
    # Given a package list with an option smuggled in
    # When / Then it is refused with one line naming it, and nothing is built
    with pytest.raises(ProvisionError, match="not a Debian package name: '--foreign'"):
        rootfs_tarball(tmp_path, ["python3", "--foreign"])
    with pytest.raises(ProvisionError, match="not a Debian package name: '-oDebug=1'"):
        rootfs_tarball(tmp_path, ["python3"], late=["-oDebug=1"])
    assert list(tmp_path.iterdir()) == []


def test_import_command_labels_the_image_with_the_key() -> None:
    # Given an uploaded tarball path with a space
    # When the import command is built
    argv = import_command("/tmp/lf work/base.tar.gz", key="abc123")
    # Then the path is one argument, the image is the base image, and the label and defaults are set
    assert argv[:2] == ["docker", "import"] and argv[-2:] == ["/tmp/lf work/base.tar.gz", BASE_IMAGE]
    assert ["--change", f"LABEL {LABEL}=abc123"] == argv[argv.index(f"LABEL {LABEL}=abc123") - 1:][:2]
    assert "ENV LANG=C.UTF-8" in argv


@pytest.mark.skipif(os.geteuid() != 0, reason="the build path runs only as root")
def test_a_failing_debootstrap_is_tried_twice_then_named_by_its_error_line(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a debootstrap that fails as a missing package makes it fail (a stand-in program on PATH)
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "debootstrap"
    fake.write_text(f'#!/bin/sh\necho run >> {calls}\necho "I: Retrieving InRelease" >&2\n'
                    'echo "E: Couldn\'t find these debs: nope" >&2\necho "W: see the log" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    cache = tmp_path / "cache"
    # When the tarball is asked for
    with pytest.raises(ProvisionError, match="debootstrap failed \\(exit 1\\): E: Couldn't find these debs: nope"):
        rootfs_tarball(cache, ["nope"], mirror="http://127.0.0.1:9/debian")
    # Then it was tried twice, and no tarball or build folder is left in the cache
    assert calls.read_text().split() == ["run", "run"]
    assert [p.name for p in cache.iterdir()] == [".lock"]
