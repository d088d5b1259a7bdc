"""Reset and hit ratio without endpoints (#17 item 4): a command run in a service, Redis' own INFO stats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from farm.errors import ResetError, SpecError
from farm.spec import load_sweep
from farm.stacks.compose_actions import parse_info, redis_hits, reset_action, run_reset
from farm.stacks.manifest import load_manifest

INFO = "# Stats\r\ntotal_connections_received:12\r\nkeyspace_hits:41\r\nkeyspace_misses:9\r\n\r\n# CPU\r\n"
STACK = """name: byo
locustfile: l.py
reset: {exec: {service: redis, command: [redis-cli, FLUSHALL]}, restart: [app]}
cache: {redis: {service: redis}}
compose: {file: docker-compose.yml, entry: web, instances: [app], scale: [app], port: 80}
"""


@dataclass
class Output:
    code: int
    stdout: str = ""
    stderr: str = ""


@dataclass
class FakeShell:
    """A RemoteShell that records argv and answers from a script (the port's in-memory implementation)."""

    answers: dict[str, Output] = field(default_factory=dict)
    ran: list[list[str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, check: bool = True,
            env: Mapping[str, str] | None = None) -> Output:
        self.ran.append(list(argv))
        return next((out for word, out in self.answers.items() if word in argv), Output(0))


def stack(folder: Path, text: str = STACK) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stack.yaml").write_text(text)
    (folder / "docker-compose.yml").write_text("services: {web: {image: x}, app: {image: x}, redis: {image: x}}\n")
    (folder / "l.py").write_text("")
    return folder


def test_redis_info_is_read_into_its_fields() -> None:
    assert parse_info(INFO)["keyspace_hits"] == "41" and parse_info(INFO)["keyspace_misses"] == "9"


def test_the_reset_runs_its_command_in_the_service_then_restarts_the_named_ones(tmp_path: Path) -> None:
    manifest = load_manifest(stack(tmp_path / "byo"))
    action = reset_action(manifest)
    assert action is not None
    shell = FakeShell()
    run_reset(shell, ["docker", "compose"], "p1", action, {})
    assert shell.ran == [["docker", "compose", "-p", "p1", "exec", "-T", "redis", "redis-cli", "FLUSHALL"],
                         ["docker", "compose", "-p", "p1", "restart", "--timeout", "10", "app"]]


def test_a_failing_reset_command_fails_naming_the_service_the_command_and_its_output(tmp_path: Path) -> None:
    action = reset_action(load_manifest(stack(tmp_path / "byo")))
    assert action is not None
    shell = FakeShell({"FLUSHALL": Output(1, stderr="Could not connect to Redis at 127.0.0.1:6379\n")})
    with pytest.raises(ResetError, match="redis-cli FLUSHALL in redis exited 1: Could not connect"):
        run_reset(shell, ["docker", "compose"], "p1", action, {})


def test_the_hit_ratio_comes_from_redis_own_counters(tmp_path: Path) -> None:
    manifest = load_manifest(stack(tmp_path / "byo"))
    shell = FakeShell({"INFO": Output(0, stdout=INFO)})
    assert redis_hits(shell, ["docker", "compose"], "p1", manifest, {}) == (41, 9)
    assert shell.ran == [["docker", "compose", "-p", "p1", "exec", "-T", "redis", "redis-cli", "INFO", "stats"]]


def test_an_empty_reset_action_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="a reset needs"):
        load_manifest(stack(tmp_path / "byo", STACK.replace(
            "{exec: {service: redis, command: [redis-cli, FLUSHALL]}, restart: [app]}", "{}")))


def test_a_sweep_here_for_a_stack_that_resets_inside_its_containers_is_refused(tmp_path: Path) -> None:
    folder = stack(tmp_path / "byo", STACK + "local: {entry: app, services: [{name: app, command: [x]}]}\n")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nstack: {folder}\nmatrix: {{users: [1]}}\nload: {{duration: 2s}}\n")
    with pytest.raises(SpecError, match="only a SUT host runs"):
        load_sweep(sweep)


LOCAL = """name: byo
locustfile: l.py
reset: /reset
cache: {redis: {service: redis}}
local:
  entry: app
  services:
    - {name: redis, command: [redis-server, --port, "{{ port }}", --save, ""], ready: tcp}
    - {name: app, instance: true, command: [x]}
"""


def test_the_process_recipe_reads_its_redis_services_own_counters_at_its_port(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import time

    import redis

    from farm.stacks.driver import Deployment, Endpoint
    from farm.stacks.local import LocalDriver
    from farm.stacks.probe import free_port, tcp_open

    # Given a process recipe whose redis-server is its cache, and a sweep here naming it: accepted
    manifest = load_manifest(stack(tmp_path / "byo", LOCAL))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nstack: {manifest.folder}\nmatrix: {{users: [1]}}\nload: {{duration: 2s}}\n")
    load_sweep(sweep)
    # And that redis-server running, with 2 hits and 3 misses
    port = free_port()
    server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not tcp_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.05)
        client = redis.Redis(port=port)
        client.set("k", "v")
        for key in ("k", "k", "a", "b", "c"):
            client.get(key)
        client.close()
        endpoints = [Endpoint("redis", 0, "127.0.0.1", port), Endpoint("app", 0, "127.0.0.1", free_port())]
        deployment = Deployment("d", manifest.model_copy(update={"metrics": None}), {}, endpoints[1], endpoints,
                                tmp_path, instance_services=frozenset({"app"}))
        # When the local driver reads the stack's metrics
        metrics = LocalDriver(tmp_path / "runs").metrics(deployment)
        # Then the hits and misses are Redis' own
        assert (metrics.cache_hits, metrics.cache_misses) == (2, 3) and not metrics.warnings
    finally:
        server.terminate()
        server.wait(10)
    # And once nothing listens there, the reading is a warning with the hit ratio left empty, never an error
    gone = LocalDriver(tmp_path / "runs").metrics(deployment)
    assert gone.cache_hits is None and "cache statistics of redis" in gone.warnings[0]


def test_the_process_recipe_refuses_what_only_compose_services_run(tmp_path: Path) -> None:
    from farm.errors import ResetError as _ResetError
    from farm.stacks.driver import Deployment, Endpoint
    from farm.stacks.local import LocalDriver

    # a cache service the process recipe lacks is refused in one line naming it
    folder = stack(tmp_path / "a", LOCAL.replace("service: redis}", "service: cache}"))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nstack: {folder}\nmatrix: {{users: [1]}}\nload: {{duration: 2s}}\n")
    with pytest.raises(SpecError, match="names no service of its process recipe"):
        load_sweep(sweep)
    # and a reset action reaching the local driver (`farm stack` by hand) fails, never skipped silently
    manifest = load_manifest(stack(tmp_path / "b", STACK + "local: {entry: app, services: [{name: app, "
                                                            "command: [x]}]}\n"))
    endpoint = Endpoint("app", 0, "127.0.0.1", 1)
    with pytest.raises(_ResetError, match="runs in compose services"):
        LocalDriver(tmp_path / "runs").reset(Deployment("d", manifest, {}, endpoint, [endpoint], tmp_path))
