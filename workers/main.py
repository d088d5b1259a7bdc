"""`farm worker`: clean up after a dead predecessor, reap expired leases, and consume this host's queues."""

from __future__ import annotations

import logging
import os

from farm.remote.hosts import load_hosts
from farm.settings import Settings
from farm.stacks.compose import clean_dead, ssh_connector
from farm.stacks.local import LocalDriver
from farm.store.repository import Store
from scheduler.app import make_app
from scheduler.contract import SHARED_QUEUE, host_queue

log = logging.getLogger("loadfarm.worker")


def run_worker(settings: Settings, name: str, *, loglevel: str = "INFO") -> None:
    """Run a Celery worker for this host until it is stopped (concurrency 1, prefetch 1, events on)."""
    os.environ["FARM_HOST_NAME"] = name  # the pool's processes build their settings from the environment
    app = make_app(settings)
    stopped = LocalDriver(settings.artefacts_dir / "deployments").clean_dead()
    if stopped:
        log.warning("stopped %d process group(s) left by a dead worker on this host", stopped)
    if settings.hosts_file.is_file():
        removed = clean_dead(settings.artefacts_dir / "deployments", load_hosts(settings.hosts_file),
                             ssh_connector(settings.ssh_connect_timeout_s))
        if removed:
            log.warning("removed %d deployment(s) a dead worker left on SUT hosts", removed)
    store = Store(settings.database_url, retry_s=30.0)
    store.migrate()
    store.engine.dispose()  # no connection crosses the pool's fork; the reaper runs in the pool process
    app.worker_main([
        "worker", f"--hostname={name}@%h", f"--queues={host_queue(name)},{SHARED_QUEUE}",
        "--concurrency=1", "--prefetch-multiplier=1", "--pool=prefork", "--task-events",
        "--without-gossip", "--without-mingle", f"--loglevel={loglevel}",
    ])
