"""`farm stack init --from docker-compose.yml`: a starting ``stack.yaml`` guessed from a team's compose file.

The guess, each part printed with what to check:

- **entry**: the service that publishes a port (of several, the one in front: not a database or cache, no other
  published service depends on it, an HTTP-looking port); with none published, the service in front (nothing
  depends on it, a proxy image first); ``port`` is the container port it publishes (or exposes; else 80).
- **scalable**: every other service without a published port that has an ``image:`` or ``build:``, is not a
  known database or cache, has no fixed ``container_name`` (Compose cannot scale one) and no ``network_mode``:
  they are the recipe's ``instances`` (checked, reset and read replica by replica), ``scale`` and ``scalable``.
- **health** ``/``; a starting ``locustfile.py`` (GET /) unless the folder has one.

The compose file is used unchanged (README, "Bring your own compose file"); the manifest is validated by the
manifest loader before anything is written, and an existing ``stack.yaml`` is never replaced without ``force``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from farm import files
from farm.errors import SpecError
from farm.stacks.compose_override import published_port, read_services
from farm.stacks.manifest import MANIFEST_FILE, parse_manifest

LOCUSTFILE = "locustfile.py"
MAX_COMPOSE_BYTES = 1 << 20
# Images that hold state or a protocol other than HTTP: never the entry, never scaled by a guess.
STORE = re.compile(r"^(.*/)?(mysql|mariadb|postgres|postgis|redis|valkey|memcached|mongo|rabbitmq|kafka|zookeeper|"
                   r"elasticsearch|opensearch|cassandra|couchdb|influxdb|minio|etcd|nats|mssql|oracle)", re.I)
STORE_PORTS = frozenset({1433, 1521, 2181, 3306, 4222, 5432, 5672, 6379, 9042, 9092, 11211, 27017})
HTTP_PORTS = (80, 8080, 8000, 443, 3000, 5000, 8443, 8888)
REDIS = re.compile(r"^(.*/)?(redis|valkey)", re.I)
PROXY = re.compile(r"^(.*/)?(nginx|httpd|apache|haproxy|traefik|caddy|envoy|varnish)", re.I)
STARTER_LOCUSTFILE = '''"""A starting scenario written by `farm stack init`: each user GETs /; write yours."""

from locust import FastHttpUser, between, task


class Visitor(FastHttpUser):
    """Requests the home page, again and again."""

    wait_time = between(0.1, 0.5)

    @task
    def home(self) -> None:
        self.client.get("/")
'''


@dataclass(frozen=True)
class _Service:
    """What the guess reads of one compose service."""

    name: str
    index: int
    image: str
    builds: bool
    published: tuple[tuple[int | None, int], ...]  # (fixed host port or None, container port)
    exposed: tuple[int, ...]
    depends_on: frozenset[str]
    container_name: bool
    network_mode: bool
    programs: str  # the programs its command, entrypoint and healthcheck run (`redis-server`, `redis-cli`)

    @property
    def store(self) -> bool:
        """A database or cache: by its image or programs, or by publishing/exposing only such ports."""
        ports = {target for _h, target in self.published} | set(self.exposed)
        return self.runs(STORE) or (bool(ports) and ports <= STORE_PORTS)

    def runs(self, pattern: re.Pattern[str]) -> bool:
        """Whether its image or one of its programs matches ``pattern``."""
        return self.matched(pattern) is not None

    def matched(self, pattern: re.Pattern[str]) -> str | None:
        """Its image or the first of its programs that matches ``pattern``, or None."""
        return next((w for w in (self.image, *self.programs.split()) if pattern.search(w)), None)


@dataclass(frozen=True)
class Guess:
    """A starting manifest (its YAML text) and, in words, what was guessed and what to check."""

    text: str
    entry: str
    port: int
    scaled: tuple[str, ...]
    guessed: tuple[str, ...]
    to_check: tuple[str, ...]
    locustfile: str | None = None  # a starting scenario to write beside it, when the folder has none


@dataclass(frozen=True)
class Written:
    """What `init_stack` wrote."""

    manifest: Path
    guess: Guess
    files: tuple[Path, ...] = field(default=())


def guess_stack(compose_text: str, compose_file: str, name: str, *, has_locustfile: bool) -> Guess:
    """A starting manifest for the compose file ``compose_file`` (relative to the stack folder) of stack ``name``."""
    services = [_read(n, i, spec, compose_file) for i, (n, spec) in enumerate(read_services(compose_text,
                                                                                               compose_file).items())]
    guessed: list[str] = []
    check: list[str] = []
    entry = _entry(services, guessed, check)
    port = _port(entry, guessed, check)
    scaled = _scaled(services, entry, guessed, check)
    instances = scaled or (entry.name,)
    if not scaled:
        check.append(f"nothing to scale was found: instances: [{entry.name}] (the entry alone is checked); add "
                     "your app services to compose.instances, compose.scale and scalable")
    elif any(s.exposed and port not in s.exposed for s in services if s.name in scaled):
        check.append(f"the farm reaches {entry.name} and each replica of {', '.join(scaled)} at container port "
                     f"{port}: if they listen elsewhere, set compose.port, or list only {entry.name} in instances")
    check.append(f"health: / must answer 2xx on {entry.name} and on every replica of {', '.join(instances)}; "
                 "set your health path")
    for built in (s for s in services if s.builds and not s.image):
        check.append(f"{built.name} is built from its `build:` context: the farm starts Compose with --no-build, "
                     f"so build and tag its image on the SUT host first, or give it an `image:` the host has")
    redis = next((s.name for s in services if s.runs(REDIS)), None)
    check.append("no reset and no metrics: caches are not emptied between cells and no hit ratio is read; see the "
                 "commented lines in stack.yaml (README, 'Bring your own compose file')")
    locustfile = None if has_locustfile else STARTER_LOCUSTFILE
    check.append(f"{LOCUSTFILE}: " + ("yours, used as it is" if has_locustfile else
                                      "a starting scenario that only GETs /: write your users' paths"))
    text = _manifest_text(name, compose_file, entry.name, port, scaled, instances, redis)
    return Guess(text, entry.name, port, scaled, tuple(guessed), tuple(check), locustfile)


def init_stack(compose: Path, folder: Path | None = None, *, force: bool = False) -> Written:
    """Write ``stack.yaml`` (and a starting locustfile) for ``compose`` into ``folder`` (default: beside it)."""
    compose = compose.expanduser().resolve()
    folder = (folder.expanduser() if folder is not None else compose.parent).resolve()
    if not folder.is_dir():
        raise SpecError(f"{folder}: not a folder", hint="name the stack folder that holds the compose file")
    if not compose.is_relative_to(folder):
        raise SpecError(f"{compose} is outside the stack folder {folder}",
                        hint="a stack folder holds its compose file: give its folder, or leave DIR out")
    target = folder / MANIFEST_FILE
    if (target.exists() or target.is_symlink()) and not force:
        raise SpecError(f"{target} exists; farm stack init never replaces it",
                        hint="check it with `farm stack check`, or pass --force to replace it")
    text = files.read_small_text(compose, MAX_COMPOSE_BYTES, "compose file", "is it a compose file?")
    has_locustfile = (folder / LOCUSTFILE).is_file()
    guess = guess_stack(text, compose.relative_to(folder).as_posix(), stack_name(folder.name),
                        has_locustfile=has_locustfile)
    parse_manifest(guess.text, folder, target)  # never write what the farm would refuse
    written = [target]
    files.write_text(target, guess.text)
    if guess.locustfile is not None:
        files.write_text(folder / LOCUSTFILE, guess.locustfile)
        written.append(folder / LOCUSTFILE)
    return Written(target, guess, tuple(written))


def stack_name(folder_name: str) -> str:
    """A stack name from a folder's: lower case (it names images), letters, digits, '.', '_' and '-'."""
    name = re.sub(r"[^a-z0-9_.-]+", "-", folder_name.lower()).strip("-._")
    return name[:63] or "my-stack"


def _read(name: str, index: int, spec: dict[str, Any], where: str) -> _Service:
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise SpecError(f"{where}: services.{name}.ports must be a list")
    published = []
    for entry in ports:
        try:
            host, target, _protocol = published_port(name, entry, where)
        except SpecError:  # a port range: published, its first container port
            first = str(entry).rsplit(":", 1)[-1].split("-")[0].split("/")[0]
            host, target = None, int(first) if first.isdigit() else 0
        published.append((host, target))
    exposed = tuple(int(p) for p in (str(e).split("/")[0] for e in spec.get("expose") or []) if p.isdigit())
    depends = spec.get("depends_on") or []
    health = spec.get("healthcheck") or {}
    programs = [_program(spec.get("command")), _program(spec.get("entrypoint")),
                _program(health.get("test") if isinstance(health, dict) else None)]
    return _Service(name, index, str(spec.get("image") or ""), spec.get("build") is not None, tuple(published),
                    exposed, frozenset(str(d) for d in depends), spec.get("container_name") is not None,
                    "network_mode" in spec, " ".join(p for p in programs if p))


def _program(command: Any) -> str:
    """The program a command runs: its first word (after a healthcheck's CMD or CMD-SHELL)."""
    words = command if isinstance(command, list) else str(command or "").split()
    words = [str(w) for w in words if str(w) not in ("CMD", "CMD-SHELL", "NONE")]
    return words[0].split()[0] if words and words[0].split() else ""


def _entry(services: list[_Service], guessed: list[str], check: list[str]) -> _Service:
    depended = {d for s in services for d in s.depends_on}
    publishing = [s for s in services if s.published]
    if publishing:
        fronts = [s for s in publishing if not s.store] or publishing
        entry = min(fronts, key=lambda s: (s.name in depended, not _http(s), s.index))
        shown = ", ".join(_ports(s) for s in [entry])
        guessed.append(f"entry: {entry.name}, the service that publishes {shown}")
        others = [s for s in publishing if s is not entry]
        if others:
            check.append(f"entry: {entry.name} was chosen among the services that publish ports "
                         f"({', '.join(f'{s.name} {_ports(s)}' for s in others)}): the load goes to compose.entry")
        return entry
    runnable = [s for s in services if not s.store and (s.image or s.builds)] or services
    entry = min(runnable, key=lambda s: (s.name in depended, not PROXY.search(s.image), s.index))
    guessed.append(f"entry: {entry.name} (no service publishes a port; nothing depends on it): the farm publishes "
                   "its port on an ephemeral port of the SUT host")
    check.append(f"entry: no service publishes a port, so {entry.name} was guessed; set compose.entry to the "
                 "service that receives the load")
    return entry


def _port(entry: _Service, guessed: list[str], check: list[str]) -> int:
    targets = [t for _h, t in entry.published if t] or list(entry.exposed)
    port = next((p for p in HTTP_PORTS if p in targets), targets[0] if targets else 80)
    if targets:
        guessed.append(f"port: {port}, the container port {entry.name} " +
                       ("publishes" if entry.published else "exposes"))
    else:
        guessed.append("port: 80 (a guess: the entry neither publishes nor exposes a port)")
        check.append(f"port: 80 is a guess; set compose.port to the container port {entry.name} listens on")
    return port


def _scaled(services: list[_Service], entry: _Service, guessed: list[str], check: list[str]) -> tuple[str, ...]:
    scaled: list[str] = []
    for s in services:
        if s is entry:
            continue
        if s.published:
            guessed.append(f"{s.name}: one replica (it publishes {_ports(s)})")
        elif not (s.image or s.builds):
            guessed.append(f"{s.name}: one replica (no image and no build)")
        elif s.store:
            guessed.append(f"{s.name}: one replica (a database or cache: {s.matched(STORE) or 'by its ports'})")
        elif s.container_name:
            guessed.append(f"{s.name}: one replica (a fixed container_name cannot be scaled)")
        elif s.network_mode:
            guessed.append(f"{s.name}: one replica (network_mode: the farm cannot reach its replicas)")
        else:
            scaled.append(s.name)
    if scaled:
        guessed.append(f"scalable: {', '.join(scaled)} (no published port; `instances` replicas each, or "
                       f"replicas.<service> in a sweep), each replica checked, reset and read")
    return tuple(scaled)


def _http(service: _Service) -> bool:
    return any(t in HTTP_PORTS for _h, t in service.published)


def _ports(service: _Service) -> str:
    return ", ".join(f"{h}:{t}" if h is not None else str(t) for h, t in service.published)


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 16)
    return text.removesuffix("\n...\n").strip()  # a lone scalar ends its document with "..."


def _manifest_text(name: str, compose_file: str, entry: str, port: int, scaled: tuple[str, ...],
                   instances: tuple[str, ...], redis: str | None) -> str:
    reset = [("# The farm empties Redis before each cell and reads its hit ratio from Redis' own INFO stats:", ""),
             (f"# reset: {{exec: {{service: {redis}, command: [redis-cli, FLUSHALL]}}}}", ""),
             (f"# cache: {{redis: {{service: {redis}}}}}", "")] if redis else [
        ("# A cache reset before each cell: a POST path on each instance, {exec: {service, command}} or", ""),
        ("# {restart: [services]}:", ""), ("# reset: /farm/reset", "")]
    lines: list[tuple[str, str]] = [
        (f"# Written by `farm stack init --from {compose_file}`: a starting point; check it with", ""),
        ("# `farm stack check DIR` (add `--sut HOST` to run it once on a SUT host).", ""),
        (f"name: {_flow(name)}", ""),
        (f"description: {_flow(f'{compose_file}, as it is')}", ""),
        (f"locustfile: {LOCUSTFILE}", "the load: what each simulated user does"),
        ("health: /", "answers 2xx on the entry and on every instance replica"),
        ("# metrics: /metrics", "per instance: JSON {requests, cache: {hits, misses}}"),
        *reset,
        ("compose:", ""),
        (f"  file: {_flow(compose_file)}", "used as it is: the farm's needs go into an override beside it"),
        (f"  entry: {_flow(entry)}", "receives the load"),
        (f"  instances: {_flow(list(instances))}", "checked, reset and read replica by replica"),
        (f"  scale: {_flow(list(scaled))}", "--scale SERVICE=<instances>"),
        (f"  port: {port}", "the container port the farm reaches on the entry and on each instance"),
    ]
    if scaled:
        lines.append(("scalable:", "replicas.<service> in a sweep's matrix; the cost of one replica"))
        lines += [(f"  {_flow(s)}: {{cost: 1}}", "") for s in scaled]
    width = max(len(text) for text, comment in lines if comment) + 2
    return "".join(f"{text:<{width}}# {comment}\n" if comment else f"{text}\n" for text, comment in lines)
