"""Task names, queues and payloads: defined once, used by the scheduler (sender) and the workers (receiver)."""

from __future__ import annotations

from typing import Any

EXECUTE_GROUPS = "loadfarm.execute_groups"
SHARED_QUEUE = "farm"


def host_queue(worker_name: str) -> str:
    """The queue only one worker host consumes."""
    return f"host.{worker_name}"


def payload(sweep_name: str, group_ids: list[str], label: dict[str, Any]) -> dict[str, Any]:
    """Task arguments: ids and a readable label for Flower — never a big payload, never a secret."""
    return {"sweep": sweep_name, "groups": list(group_ids), "label": label}
