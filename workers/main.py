"""`farm worker`: clean up after a dead predecessor, reap expired leases, and consume this host's queues."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

from farm.settings import Settings
from farm.stacks import place
from farm.store.repository import Store
from scheduler.app import make_app
from scheduler.contract import SHARED_QUEUE, host_queue

log = logging.getLogger("loadfarm.worker")


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM (a warm shutdown: the running group is cancelled, torn down and
    handed back) when ``parent`` dies — `farm run`'s worker must not outlive a `farm run` that was killed.
    Exits at once if the parent is already gone."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to stop with the parent process: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # it died before the request took effect
        log.warning("the parent process %d is gone; not starting", parent)
        sys.exit(0)


def run_worker(settings: Settings, name: str, *, loglevel: str = "INFO", parent: int | None = None) -> None:
    """Run a Celery worker for this host until it is stopped (concurrency 1, prefetch 1, events on); with
    ``parent``, also until that process dies."""
    if parent is not None:
        stop_with_parent(parent)
    os.environ["FARM_HOST_NAME"] = name  # the pool's processes build their settings from the environment
    app = make_app(settings)
    cleaned = place.clean_dead(settings)
    if cleaned.processes:
        log.warning("stopped %d process group(s) left by a dead worker on this host", cleaned.processes)
    if cleaned.deployments:
        log.warning("removed %d deployment(s) a dead worker left on SUT hosts", cleaned.deployments)
    store = Store(settings.database_url, retry_s=30.0)
    store.migrate()
    store.engine.dispose()  # no connection crosses the pool's fork; the reaper runs in the pool process
    try:
        app.worker_main([
            "worker", f"--hostname={name}@%h", f"--queues={host_queue(name)},{SHARED_QUEUE}",
            "--concurrency=1", "--prefetch-multiplier=1", "--pool=prefork", "--task-events",
            "--without-gossip", "--without-mingle", f"--loglevel={loglevel}",
        ])
    finally:
        if parent is not None and os.getppid() != parent and settings.broker_url is not None:
            _stop_orphaned_broker(settings.broker_url.get_secret_value())


def _stop_orphaned_broker(url: str) -> None:
    """`farm run` died without stopping its embedded broker (a daemonised redis-server): stop it, the last of the
    run's processes. Only ever called for the broker of the `farm run` that started this worker."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if url.startswith("redis+socket://"):  # kombu's name for a unix socket; redis-py's is unix://
        url = "unix://" + url.removeprefix("redis+socket://")
    try:
        redis.Redis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # SHUTDOWN closes the connection: the expected answer
    except Exception as exc:  # already gone, or not a Redis we may stop: leave it, say so
        log.warning("could not stop the run's embedded broker: %s", exc)
