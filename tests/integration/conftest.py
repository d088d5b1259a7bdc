"""Real servers for integration tests: PostgreSQL from its binaries, started and torn down by fixtures."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.stacks.probe import free_port


def require(program: str, install: str) -> None:
    """Skip on a laptop, fail in CI, when a program the test needs is missing."""
    if shutil.which(program) is None:
        message = f"{program} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class Postgres:
    """A PostgreSQL server in a temporary folder; can be stopped and started again on the same port."""

    def __init__(self, listen: list[str] | None = None) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not binaries:
            require("initdb", "apt-get install postgresql")
        self.bindir = Path(binaries[-1]).parent if binaries else Path(shutil.which("initdb") or "").parent
        self.root = Path(tempfile.mkdtemp(prefix="farm-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.listen = ["127.0.0.1", *(listen or [])]
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run([*self.as_postgres, str(self.bindir / "initdb"), "-D", str(self.data), "-U", "farm",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        if listen:
            hba = self.data / "pg_hba.conf"
            extra = "".join(f"host all all {a}/24 trust\n" for a in listen)
            subprocess.run([*self.as_postgres, "sh", "-c", f"printf '{extra}' >> {hba}"], check=True)
        self.server: subprocess.Popen[bytes] | None = None

    def start(self) -> Postgres:
        self.server = subprocess.Popen(
            [*self.as_postgres, str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.root), "-h", ",".join(self.listen), "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.server.poll() is not None:
                pytest.fail("PostgreSQL did not start")
            time.sleep(0.2)
        return self

    def create_database(self) -> None:
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "farm",
                        "farm"], check=True, capture_output=True)

    def url(self, address: str = "127.0.0.1") -> str:
        return f"postgresql+psycopg://farm@{address}:{self.port}/farm"

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            # fast shutdown: clients are disconnected at once, as when a database server goes away
            subprocess.run([*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "stop",
                            "-m", "fast", "-w"], capture_output=True, timeout=60)
            try:
                self.server.wait(20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def nginx_available() -> None:
    """The shop's load balancer must be installed; CI fails rather than skips without it."""
    require("nginx", "apt-get install nginx-light")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on a free loopback port, with an empty database."""
    server = Postgres().start()
    try:
        server.create_database()
        yield server.url()
    finally:
        server.remove()
