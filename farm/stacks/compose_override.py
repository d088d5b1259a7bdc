"""A team's own compose file, unchanged: what the farm needs goes into an override file written beside it.

A recipe whose ``compose.file`` does not end in ``.j2`` is the team's plain ``docker-compose.yml``: it reaches the
SUT host byte for byte and Compose merges it with the farm's override (``-f theirs -f farm-limits.yaml
-f farm-override.yaml``). The override, per service:

- ``ports``, replaced (Compose's ``!override``) where the service publishes any: a fixed host port stays fixed
  (the entry's ``"8080:80"`` keeps working) but is published on the SUT host's lab address only; a service the
  farm scales publishes its container ports on ephemeral host ports instead (N replicas cannot share one fixed
  port), and the farm says so; an entry that publishes nothing gets its container ``port`` on an ephemeral
  port of the lab address (the load comes from the generator).
- ``labels``: the deployment's name (``io.loadfarm.deployment``), so the farm's containers are told apart.

An instance service that publishes nothing stays unpublished: the override adds the farm's probe container
(compose_probe) on its networks, and the farm reaches each replica from there. Nothing but the team's own ports
and the entry's is published on the SUT host.

The replica counts go on the command line (``--scale``). PyYAML reads YAML 1.1, where an unquoted ``8080:80`` is a
base-60 number; the file is read here with YAML 1.2's reading of such values (a string, as Compose reads it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from farm.errors import SpecError
from farm.stacks.compose_limits import DEPLOYMENT_LABEL, publish_address
from farm.stacks.compose_probe import PROBE_SERVICE, probe_service

OVERRIDE_FILE = "farm-override.yaml"


def is_template(file: str) -> bool:
    """Whether a recipe's compose file is a Jinja template (``.j2``); any other file is used as it is."""
    return Path(file).suffix == ".j2"


class _Compose12Loader(yaml.SafeLoader):
    """PyYAML's safe loader without YAML 1.1's base-60 numbers: ``8080:80`` is the text Compose sees."""


_Compose12Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _digit in "0123456789":
    _Compose12Loader.yaml_implicit_resolvers[_digit].insert(
        0, ("tag:yaml.org,2002:str", re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")))


class _Override(list[Any]):
    """A sequence written with Compose's ``!override`` tag: it replaces the team file's, not appended to it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Override, lambda dumper, data: dumper.represent_sequence("!override", list(data)))


def read_services(text: str, where: str) -> dict[str, dict[str, Any]]:
    """The services of a team's compose file, read as Compose reads it (``8080:80`` stays text)."""
    try:
        doc = yaml.load(text, Loader=_Compose12Loader)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not YAML: {' '.join(str(exc).split())[:300]}") from exc
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise SpecError(f"{where}: no services: a compose file maps service names to their definitions")
    return {str(name): spec if isinstance(spec, dict) else {} for name, spec in services.items()}


class Override(NamedTuple):
    """The override file's text, one note per change a user should know of, and whether it adds the probe."""

    text: str
    notes: list[str]
    probe: bool


def farm_override(text: str, where: str, *, project: str, bind: str, port: int, entry: str, reached: set[str],
                  scaled: dict[str, int], token: str = "") -> Override:
    """The override file for a team's compose file.

    ``entry``: the service the load goes to; ``reached``: the other services the farm checks, resets and reads
    (instances); ``scaled``: service -> its replica count; ``token``: the deployment's, for the probe.
    """
    services = read_services(text, where)
    reached = reached | {entry}
    missing = sorted((reached | set(scaled)) - set(services))
    if missing:
        raise SpecError(f"{where}: the recipe names {', '.join(missing)}, which the compose file does not define; "
                        f"its services: {', '.join(services)}")
    added: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    inside: set[str] = set()
    for name, spec in services.items():
        entries = spec.get("ports") or []
        if not isinstance(entries, list):
            raise SpecError(f"{where}: services.{name}.ports must be a list")
        published = [published_port(name, entry, where) for entry in entries]
        ports = []
        for host_port, target, protocol in published:
            if host_port is not None and name in scaled:
                notes.append(f"{name}: publishes host port {host_port} but runs {scaled[name]} replica(s) "
                             f"scaled by the farm, which cannot share one host port; its container port "
                             f"{target} is published on an ephemeral port instead")
                host_port = None
            ports.append(_entry(bind, host_port, target, protocol))
        if name in reached and port not in {target for _h, target, _p in published}:
            if name == entry:
                ports.append(publish_address(bind, port))
            else:
                inside.add(name)
        override: dict[str, Any] = {"labels": {DEPLOYMENT_LABEL: project}}
        if ports:
            override["ports"] = _Override(ports)
        added[name] = override
    if inside:
        added[PROBE_SERVICE] = {**probe_service(services, inside, token),
                                "labels": {DEPLOYMENT_LABEL: project}}
    return Override(yaml.dump({"services": added}, Dumper=_Dumper, sort_keys=True), notes, bool(inside))


def published_port(service: str, entry: Any, where: str) -> tuple[int | None, int, str]:
    """A ``ports`` entry (short or long syntax) as (fixed host port or None, container port, protocol)."""
    if isinstance(entry, dict):
        target, published, protocol = entry.get("target"), entry.get("published"), entry.get("protocol") or "tcp"
    else:
        text, _, protocol = str(entry).partition("/")
        protocol = protocol or "tcp"
        if text.startswith("["):  # [::1]:8080:80
            text = text[text.find("]") + 2:] if "]:" in text else text
        parts = text.rsplit(":", 2)
        target = parts[-1]
        published = parts[-2] if len(parts) >= 2 else None
    try:
        container = int(str(target))
        host = int(str(published)) if published not in (None, "") else None
    except ValueError as exc:
        raise SpecError(f"{where}: services.{service}.ports: {entry!r}: port ranges are not supported",
                        hint="publish single ports, e.g. \"8080:80\" or \"80\"") from exc
    return host, container, str(protocol)


def _entry(bind: str, host_port: int | None, target: int, protocol: str) -> str:
    address = f"[{bind}]" if ":" in bind else bind
    suffix = "" if protocol == "tcp" else f"/{protocol}"
    return f"{address}:{host_port if host_port is not None else ''}:{target}{suffix}"
