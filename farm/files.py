"""Writing into the artefacts folder without following symlinks someone else may have planted there."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from farm.errors import ProvisionError, SpecError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) as a real folder; refuse one that is a symlink."""
    if path.is_symlink():
        raise ProvisionError(f"{path} is a symlink; the farm does not write through symlinks",
                             hint="remove it, or choose another FARM_ARTEFACTS_DIR")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise ProvisionError(f"{path} is a symlink; the farm does not write through symlinks",
                                 hint="remove it") from exc
        raise


def write_text(path: Path, text: str) -> None:
    """Write (replace) a file's text, never through a symlink."""
    with os.fdopen(_open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as fh:
        fh.write(text)


def open_log(path: Path, append: bool = False) -> BinaryIO:
    """A log file opened for binary writing, never through a symlink."""
    mode = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    return os.fdopen(_open(path, mode), "ab" if append else "wb")


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of a regular file (one byte more says it is too large); OSError for anything
    else — opened without blocking and checked before reading, so a FIFO or /dev/zero cannot hang the reader."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(mode)})")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as stream:
            fd = -1  # closed by the stream from here on
            return stream.read(limit + 1)
    finally:
        if fd >= 0:
            os.close(fd)


def read_small_text(path: Path, limit: int, what: str, short: str) -> str:
    """A small UTF-8 file the user names (a manifest, a compose file), read with `read_regular`; `SpecError` in
    one line naming the file and ``what`` it should be when it cannot be read, or is larger than ``limit`` bytes
    (``short`` says why it should not be)."""
    try:
        data = read_regular(path, limit)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"{path}: cannot read the {what}: {reason}") from exc
    if len(data) > limit:
        raise SpecError(f"{path}: larger than {limit >> 20} MiB; {short}")
    return text


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a file"
