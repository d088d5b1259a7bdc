"""Where a compose project's replicas are: `docker compose ps` read into one endpoint per reached replica.

Never skip a replica silently: a reached service (the entry, an instance) whose running replica publishes no
port the farm can reach would be measured blind (no readiness, connectivity check, reset or metrics of its own),
so it is an error naming the replica, never a shorter list.
"""

from __future__ import annotations

import json
import re
from typing import Any

from farm.errors import ProvisionError
from farm.stacks.driver import Endpoint


def ps_rows(text: str) -> list[dict[str, Any]]:
    """`docker compose ps --format json`: a JSON array (older Compose) or one object per line (newer)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
        return [r for r in rows if isinstance(r, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def replica_endpoints(rows: list[dict[str, Any]], project: str, reached: set[str], port: int,
                      address: str) -> list[Endpoint]:
    """Every running replica of the ``reached`` services at the host port publishing its container ``port``, in
    service and replica order; ProvisionError naming each running replica that publishes none."""
    found: dict[tuple[str, int], Endpoint] = {}
    running: dict[tuple[str, int], str] = {}
    for container in rows:
        service = str(container.get("Service", ""))
        if service not in reached:
            continue
        number = re.search(r"-(\d+)$", str(container.get("Name", "")))
        replica = int(number.group(1)) - 1 if number else 0
        running[(service, replica)] = str(container.get("Name", ""))
        for pub in container.get("Publishers") or []:
            if int(pub.get("TargetPort") or 0) == port and int(pub.get("PublishedPort") or 0) > 0:
                found[(service, replica)] = Endpoint(service, replica, address, int(pub["PublishedPort"]))
    unreached = [running[k] for k in sorted(running) if k not in found]
    if unreached:
        raise ProvisionError(f"{project}: the farm cannot reach {', '.join(unreached)}: container port {port} is "
                             "not published on the host, so it could not be checked, reset or read",
                             hint=f"publish port {port} of every reached service (in a template: ports: "
                                  "[{{ publish | tojson }}]), or use the plain compose file, which the farm's "
                                  "override publishes")
    return [found[k] for k in sorted(found)]
