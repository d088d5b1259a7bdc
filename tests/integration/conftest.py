"""Real servers for integration tests: PostgreSQL started from its binaries, torn down after."""

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


def _require(program: str, install: str) -> None:
    if shutil.which(program) is None:
        message = f"{program} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def nginx_available() -> None:
    """The shop's load balancer must be installed; CI fails rather than skips without it."""
    _require("nginx", "apt-get install nginx-light")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a temporary folder, on a free loopback port."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        _require("initdb", "apt-get install postgresql")
    bindir = Path(binaries[-1]).parent if binaries else Path(shutil.which("initdb") or "").parent
    root = Path(tempfile.mkdtemp(prefix="farm-pg-"))
    data = root / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        os.chmod(root, 0o755)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "farm", "--auth=trust",
                    "-E", "UTF8"], check=True, capture_output=True)
    server = subprocess.Popen([*as_postgres, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                               "-k", str(root), "-h", "127.0.0.1", "-c", "fsync=off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("PostgreSQL did not start")
            time.sleep(0.2)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "farm", "farm"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://farm@127.0.0.1:{port}/farm"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
