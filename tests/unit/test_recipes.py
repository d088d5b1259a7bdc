"""A stack with one recipe: compose-only and process-only stacks load, and a sweep whose driver needs the recipe
the stack lacks is refused in one line naming it (#17 item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.spec import load_sweep
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from tests.conftest import farm

COMPOSE = "compose: {file: docker-compose.yml, entry: web, instances: [app], scale: [app], port: 80}\n"
LOCAL = "local: {entry: app, services: [{name: app, command: [x, '{{ port }}'], instance: true}]}\n"


def stack(folder: Path, *recipes: str, scalable: str = "") -> Path:
    """A stack folder with the given recipe sections."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "docker-compose.yml").write_text("services:\n  web: {image: nginx}\n  app: {image: app}\n")
    (folder / "l.py").write_text("")
    (folder / "stack.yaml").write_text(f"name: {folder.name}\nlocustfile: l.py\n{scalable}" + "".join(recipes))
    return folder


def sweep(folder: Path, stack_folder: Path, sut: bool) -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"name: s\nstack: {stack_folder}\nmatrix: {{users: [1], instances: [1, 2]}}\n"
                    "load: {duration: 2s}\n" + ("sut: {hosts: [sutA], driver: compose}\n" if sut else ""))
    return path


def test_a_compose_only_stack_loads_and_runs_on_a_sut_host(tmp_path: Path) -> None:
    # Given a stack with only a compose recipe
    manifest = load_manifest(stack(tmp_path / "byo", COMPOSE))
    # Then it loads, its services are the compose recipe's, and a sweep on SUT hosts accepts it
    assert manifest.local is None and manifest.services() == ("web", "app")
    assert load_sweep(sweep(tmp_path, manifest.folder, sut=True)).manifest.name == "byo"


def test_a_compose_only_stack_run_here_is_refused_naming_the_missing_recipe(tmp_path: Path) -> None:
    folder = stack(tmp_path / "byo", COMPOSE)
    # When a sweep without `sut:` names it
    with pytest.raises(SpecError) as refused:
        load_sweep(sweep(tmp_path, folder, sut=False))
    # Then one line names the stack, the missing recipe and both ways out
    message = refused.value.message
    assert "'byo' has no local recipe" in message and "sut:" in message and "local:" in message
    assert "\n" not in message


def test_a_process_only_stack_on_a_sut_host_is_refused_naming_the_missing_recipe(tmp_path: Path) -> None:
    folder = stack(tmp_path / "proc", LOCAL)
    with pytest.raises(SpecError, match="'proc' has no compose recipe"):
        load_sweep(sweep(tmp_path, folder, sut=True))
    assert load_sweep(sweep(tmp_path, folder, sut=False)).manifest.compose is None


def test_a_stack_without_any_recipe_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="at least one recipe"):
        load_manifest(stack(tmp_path / "none"))


def test_the_local_driver_refuses_a_compose_only_stack_before_starting_anything(tmp_path: Path) -> None:
    manifest = load_manifest(stack(tmp_path / "byo", COMPOSE))
    with pytest.raises(SpecError, match="no local recipe"):
        LocalDriver(tmp_path / "deployments").up(manifest, {"instances": 1}, "d1")
    assert not (tmp_path / "deployments" / "d1").exists()


def test_a_compose_only_stack_may_scale_a_compose_service_on_its_own(tmp_path: Path) -> None:
    # Given a compose-only stack marking its scaled service scalable
    manifest = load_manifest(stack(tmp_path / "byo", COMPOSE, scalable="scalable: {app: {cost: 2}}\n"))
    from farm.stacks.scaling import declared_cost

    # Then its declared cost counts the compose service's replicas
    assert declared_cost(manifest, {"replicas.app": 3})[0] == 6.0
    # And a service the compose recipe does not name cannot be scalable
    with pytest.raises(SpecError, match=r"scalable\.db: not a service of the compose recipe"):
        load_manifest(stack(tmp_path / "bad", COMPOSE, scalable="scalable: {db: {cost: 1}}\n"))


def test_farm_run_refuses_the_missing_recipe_in_one_line_with_exit_2(tmp_path: Path) -> None:
    folder = stack(tmp_path / "byo", COMPOSE)
    result = farm("run", str(sweep(tmp_path, folder, sut=False)), cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no local recipe" in lines[0] and "Traceback" not in result.stderr
