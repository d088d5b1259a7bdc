"""The worker-host side: Celery tasks that execute cell groups through farm's drivers and runner."""
