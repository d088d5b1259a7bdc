"""What the farm holds every compose project on a SUT host to: limits per service, and ports on the lab address.

Limits every compose service gets unless its file sets its own: a process count and a memory limit.

A stack's compose file is the stack author's; the SUT host is the lab's. A fork bomb or a leak in one container
must not take the host (and the next group measured on it) down with it, so each service without a
``pids_limit`` gets one, and each without a memory limit (``mem_limit``, or ``deploy.resources.limits.memory``)
gets the recipe's ``limits.memory``. They go in an override file (``-f compose.yaml -f farm-limits.yaml``): the
stack's own file reaches Compose as it was rendered, never re-written by another YAML library (PyYAML reads
YAML 1.1, Compose 1.2: ``no`` or ``8080:80`` would change meaning).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from farm.errors import ProvisionError, SpecError

LIMITS_FILE = "farm-limits.yaml"
# Every container of a farm deployment carries it (its value: the deployment's name), so that the holder of a SUT
# host's lease can find and remove what no live lease owns any more.
DEPLOYMENT_LABEL = "io.loadfarm.deployment"


def limits_override(compose_text: str, pids: int, memory: str, deployment: str = "") -> str:
    """An override file giving ``pids_limit`` and ``mem_limit`` to every service of the rendered compose file
    that lacks them, and the farm's label (``deployment``, when given) to every service."""
    added: dict[str, dict[str, Any]] = {}
    for name, spec in _services(_load(compose_text)).items():
        if not isinstance(spec, dict):
            continue
        limits: dict[str, Any] = {"labels": {DEPLOYMENT_LABEL: deployment}} if deployment else {}
        if "pids_limit" not in spec:
            limits["pids_limit"] = pids
        if "mem_limit" not in spec and not _deploy_memory(spec):
            limits["mem_limit"] = memory
        if limits:
            added[str(name)] = limits
    return yaml.safe_dump({"services": added}, sort_keys=True) if added else "services: {}\n"


def _deploy_memory(spec: dict[str, Any]) -> bool:
    deploy = spec.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    limits = resources.get("limits") if isinstance(resources, dict) else None
    return isinstance(limits, dict) and bool(limits.get("memory"))


def _load(text: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"the rendered compose file is not YAML: {' '.join(str(exc).split())[:300]}") from exc
    if not isinstance(doc, dict):
        raise SpecError("the rendered compose file is not a mapping with services:")
    return doc


def _services(doc: dict[str, Any]) -> dict[str, Any]:
    services = doc.get("services")
    return services if isinstance(services, dict) else {}


def publish_address(bind: str, port: int) -> str:
    """A compose ``ports`` entry publishing container ``port`` on an ephemeral port of ``bind`` only."""
    host = f"[{bind}]" if ":" in bind else bind
    return f"{host}::{port}"


def check_published(compose_text: str, bind: str) -> None:
    """Refuse a rendered compose file that publishes a port on any address but ``bind`` (the SUT host's lab
    address): ``"8080"`` or ``0.0.0.0::8080`` would open the service to every network the host is on."""
    wanted = ipaddress.ip_address(bind)
    for name, spec in _services(_load(compose_text)).items():
        ports = spec.get("ports") if isinstance(spec, dict) else None
        for entry in ports if isinstance(ports, list) else []:
            address = _host_ip(entry)
            try:
                same = address is not None and ipaddress.ip_address(address) == wanted
            except ValueError:
                same = False
            if not same:
                raise SpecError(f"compose file: service '{name}' publishes {entry!r} on "
                                f"{'every address' if address is None else address} of the SUT host",
                                hint="publish on the lab address only: ports: [{{ publish | tojson }}] (renders "
                                     f"{publish_address(bind, 8080)!r} for port 8080)")


def _host_ip(entry: Any) -> str | None:
    """The host address of a ``ports`` entry (short or long syntax), None when it names none (all addresses)."""
    if isinstance(entry, dict):
        value = entry.get("host_ip")
        return str(value) if value else None
    text = str(entry)
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 and text[end + 1:end + 2] == ":" else None
    parts = text.split(":")
    return parts[0] if len(parts) == 3 and parts[0] else None


def lab_address(conn: Any, host: Any) -> str:
    """The SUT host's address on the network this generator reached it by: the server side of the SSH connection
    (``$SSH_CONNECTION``, as the host itself sees it), else the hosts file's address if it is an IP address."""
    result = conn.run(["sh", "-c", 'printf %s "$SSH_CONNECTION"'], timeout=30, check=False)
    fields = result.stdout.split() if result.code == 0 else []
    for candidate in ([fields[2]] if len(fields) == 4 else []) + [host.address]:
        try:
            return str(ipaddress.ip_address(candidate.split("%")[0]))
        except ValueError:
            continue
    raise ProvisionError(f"{host.name}: cannot tell which address of the host its services should listen on",
                         hint="name it as bind: ADDRESS for this host in the hosts file")
