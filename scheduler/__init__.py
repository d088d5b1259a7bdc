"""The control plane: the Celery app, dispatch of cell groups to host queues, progress, cancel, resume, reaping."""
