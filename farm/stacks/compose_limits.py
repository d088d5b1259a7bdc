"""Limits every compose service gets unless its file sets its own: a process count and a memory limit.

A stack's compose file is the stack author's; the SUT host is the lab's. A fork bomb or a leak in one container
must not take the host (and the next group measured on it) down with it, so each service without a
``pids_limit`` gets one, and each without a memory limit (``mem_limit``, or ``deploy.resources.limits.memory``)
gets the recipe's ``limits.memory``. They go in an override file (``-f compose.yaml -f farm-limits.yaml``): the
stack's own file reaches Compose as it was rendered, never re-written by another YAML library (PyYAML reads
YAML 1.1, Compose 1.2: ``no`` or ``8080:80`` would change meaning).
"""

from __future__ import annotations

from typing import Any

import yaml

from farm.errors import SpecError

LIMITS_FILE = "farm-limits.yaml"


def limits_override(compose_text: str, pids: int, memory: str) -> str:
    """An override file giving ``pids_limit`` and ``mem_limit`` to every service of the rendered compose file
    that lacks them."""
    added: dict[str, dict[str, Any]] = {}
    for name, spec in _services(_load(compose_text)).items():
        if not isinstance(spec, dict):
            continue
        limits: dict[str, Any] = {}
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
