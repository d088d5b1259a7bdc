"""Where a compose project's replicas are: `docker compose ps` read into one endpoint per reached replica.

A replica that publishes its port is reached from the generator at the host port; one that publishes nothing is
reached from the farm's probe container inside the project's network (compose_probe), by its container name,
when the override added one. Never skip a replica silently: a reached service's running replica the farm can
reach neither way would be measured blind (no readiness, connectivity check, reset or metrics of its own), so
it is an error naming the replica, never a shorter list.
"""

from __future__ import annotations

import json
import re
from typing import Any

from farm.errors import ProvisionError
from farm.stacks.compose_probe import PROBE_SERVICE
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
    """Every running replica of the ``reached`` services at the host port publishing its container ``port``, or
    else through the probe container, in service and replica order; ProvisionError naming each running replica
    reached neither way."""
    found: dict[tuple[str, int], Endpoint] = {}
    running: dict[tuple[str, int], str] = {}
    probe = next((str(c.get("Name")) for c in rows if c.get("Service") == PROBE_SERVICE and c.get("Name")), "")
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
        if (service, replica) not in found and probe and running[(service, replica)]:
            found[(service, replica)] = Endpoint(service, replica, running[(service, replica)], port, via=probe)
    unreached = [running[k] for k in sorted(running) if k not in found]
    if unreached:
        raise ProvisionError(f"{project}: the farm cannot reach {', '.join(unreached)}: container port {port} is "
                             "not published on the host, so it could not be checked, reset or read",
                             hint=f"publish port {port} of every reached service (in a template: ports: "
                                  "[{{ publish | tojson }}]), or use the plain compose file, whose replicas the farm "
                                  "reaches from its probe container")
    return [found[k] for k in sorted(found)]
