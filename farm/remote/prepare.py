"""`farm hosts prepare`: put the offline base image on a SUT host (built here with debootstrap, imported there).

The image carries the tarball's cache key as a label, so preparing a host that is already current uploads nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from farm.remote.baseimage import BASE_IMAGE, LABEL, import_command, rootfs_tarball, tarball_key
from farm.remote.hosts import SutHost
from farm.remote.shell import Connector
from farm.remote.uploads import upload_root

IMPORT_TIMEOUT_S = 900.0


def prepare_host(host: SutHost, connect: Connector, cache_dir: Path,
                 say: Callable[[str], None] = lambda _text: None) -> str:
    """Make ``BASE_IMAGE`` current on ``host``; returns what was done ("up to date" or "imported")."""
    say("building the base root filesystem here (cached after the first time) …")
    tarball = rootfs_tarball(cache_dir)
    key = tarball_key(tarball)
    env = {"DOCKER_HOST": host.docker_host} if host.docker_host else {}
    conn = connect(host)
    try:
        current = conn.run(["docker", "image", "inspect", "--format", f'{{{{ index .Config.Labels "{LABEL}" }}}}',
                            BASE_IMAGE], timeout=60, check=False, env=env)
        if current.code == 0 and current.stdout.strip() == key:
            return "up to date"
        remote = f"{upload_root(conn, host)}/base-{key}.tar.gz"
        say(f"uploading {tarball.stat().st_size / 1e6:.0f} MB to {host.name} …")
        try:
            conn.put_file(tarball, remote)
            conn.run(import_command(remote, BASE_IMAGE, key), timeout=IMPORT_TIMEOUT_S, env=env)
        finally:
            conn.run(["rm", "-f", "--", remote], timeout=60, check=False)
        return "imported"
    finally:
        conn.close()
