"""The farm's Celery app: one task per placement unit, acknowledged late, one task at a time per worker."""

from __future__ import annotations

from celery import Celery

from farm.settings import Settings
from scheduler.contract import SHARED_QUEUE


def make_app(settings: Settings, broker_url: str | None = None) -> Celery:
    """A Celery app on the settings' broker (or the given one); tasks live in ``workers.tasks``."""
    url = broker_url or (settings.broker_url.get_secret_value() if settings.broker_url else None)
    if url is None:
        raise ValueError("no broker URL: set FARM_BROKER_URL, or use `farm run` (embedded broker)")
    app = Celery("loadfarm", broker=url, include=["workers.tasks"])
    app.conf.update(
        task_default_queue=SHARED_QUEUE,
        task_acks_late=True,  # the task is idempotent: the store's claim makes a second delivery a no-op
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,  # two load tests on one box measure each other
        task_track_started=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_ignore_result=True,  # results go to the store, not to a result backend
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    return app
