"""The upload folder on a SUT host: in the SSH user's home by default, created 0700, refused when it is a symlink,
another user's, or open to group or others (a real sshd; the folders are this box's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.errors import ProvisionError
from farm.remote.ssh import SSHConnection
from farm.remote.uploads import upload_root
from tests.integration.sshd import Sshd, sshd

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[Sshd]:
    with sshd() as running:
        yield running


def prepared(server: Sshd, workdir: str) -> str:
    host = server.sut_host(workdir=workdir)
    with SSHConnection(host, connect_timeout=5) as conn:
        return upload_root(conn, host)


def test_the_default_is_in_the_ssh_users_home_created_private(server: Sshd) -> None:
    # When the farm prepares the default upload folder (the hosts file's default workdir)
    from farm.remote.hosts import DEFAULT_WORKDIR

    existed = (Path.home() / ".loadfarm").exists()
    folder = Path(prepared(server, DEFAULT_WORKDIR))
    # Then it is ~/.loadfarm of the SSH user, a real folder of that user, mode 0700
    assert folder == Path.home() / ".loadfarm", folder
    info = folder.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077 == 0
    if not existed:
        folder.rmdir()


def test_a_missing_folder_is_created_0700(server: Sshd, tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "uploads"
    assert prepared(server, str(folder)) == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(("make", "words"), [
    ("symlink", "is a symlink or not a folder"),
    ("open", "is open to group or others (mode 1777)"),
    ("group", "is open to group or others (mode 750)"),
    ("file", "is a symlink or not a folder"),
])
def test_a_folder_others_could_reach_is_refused(server: Sshd, tmp_path: Path, make: str, words: str) -> None:
    # Given an upload folder that is a symlink (to a folder of ours), world-writable like /tmp, group-readable, or
    # a file
    folder = tmp_path / "uploads"
    if make == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    elif make == "file":
        folder.write_text("x")
    else:
        folder.mkdir()
        folder.chmod(0o1777 if make == "open" else 0o750)
    # When the farm prepares it, then it refuses in one line naming the folder and how to fix it
    with pytest.raises(ProvisionError) as caught:
        prepared(server, str(folder))
    assert f"sut: upload folder {folder} {words}" in str(caught.value), caught.value
    assert caught.value.hint


def test_a_folder_of_another_user_is_refused(server: Sshd, tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)  # nobody
    with pytest.raises(ProvisionError, match=rf"upload folder {folder} belongs to another user \(uid 65534\)"):
        prepared(server, str(folder))
