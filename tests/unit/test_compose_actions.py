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
