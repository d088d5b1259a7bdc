"""The remote port: a connection to a host that runs argv and uploads files (fabric's shape), and how to open one.

`farm.remote.ssh.SSHConnection` is the implementation (paramiko); drivers and `farm hosts prepare` take a
`Connector` so that tests and other transports can stand in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from farm.remote.hosts import SutHost


class CommandOutput(Protocol):
    """What a remote command returned."""

    @property
    def code(self) -> int:
        """Exit status."""
        ...

    @property
    def stdout(self) -> str:
        """Standard output."""
        ...

    @property
    def stderr(self) -> str:
        """Standard error."""
        ...


class RemoteShell(Protocol):
    """A connection to a host that runs argv (quoted, under a deadline) and uploads files: the fabric shape."""

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, check: bool = True,
            env: Mapping[str, str] | None = None) -> CommandOutput:
        """Run a command; raise on failure when ``check``."""
        ...

    def put_text(self, remote_path: str, text: str, mode: int = 0o644) -> None:
        """Write a remote file."""
        ...

    def put_file(self, local: Path, remote_path: str) -> None:
        """Upload a file."""
        ...

    def put_tree(self, local: Path, remote_dir: str) -> None:
        """Upload a folder."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


Connector = Callable[[SutHost], RemoteShell]


def ssh_connector(connect_timeout: float) -> Connector:
    """Open SSH connections (paramiko) with the given connect timeout."""
    def connect(host: SutHost) -> RemoteShell:
        from farm.remote.ssh import SSHConnection

        return SSHConnection(host, connect_timeout=connect_timeout).open()

    return connect
