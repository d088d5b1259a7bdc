"""`farm stack init --from docker-compose.yml` and the static `farm stack check DIR` (#17 item 5): the guessed
manifest loads with the farm's own manifest loader for the classic shape and for odd ones, and the check reports
every contract point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.stacks.check import check_folder, failed
from farm.stacks.init import init_stack
from farm.stacks.manifest import load_manifest
from tests.conftest import ROOT, farm

CLASSIC = """services:
  web:
    image: nginx:1.27
    ports: ["8080:80"]
    volumes: ["./nginx.conf:/etc/nginx/nginx.conf:ro"]
    depends_on: [app]
  app:
    image: wordpress:6
    depends_on: {db: {condition: service_healthy}}
  db:
    image: mysql:8
    healthcheck: {test: [CMD, mysqladmin, ping]}
"""
NOTHING_PUBLISHED = """services:
  cache: {image: redis:7}
  api: {build: ./api, depends_on: [cache]}
  front: {image: nginx, depends_on: [api]}
"""
SEVERAL_PUBLISHED = """services:
  db: {image: postgres:16, ports: ["5432:5432"]}
  web: {image: nginx, ports: ["443:443", 8080:80], depends_on: [app]}
  app: {image: shop/app:2, expose: ["8000"]}
  adminer: {image: adminer, ports: ["8081:8080"], depends_on: [db]}
  worker: {image: shop/app:2, container_name: the-worker}
  sidecar: {image: shop/agent, network_mode: host}
"""
BUILT = """services:
  web: {build: ./web, ports: [{target: 80, published: 8080}]}
  app: {build: {context: ./app}}
"""


def folder_with(tmp_path: Path, compose: str, name: str = "team-stack") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "docker-compose.yml").write_text(compose)
    return folder


def test_the_classic_shape_gives_nginx_as_entry_and_the_app_scaled(tmp_path: Path) -> None:
    # Given the classic exercise's compose file: nginx on 8080:80, an app that publishes nothing, MySQL
    folder = folder_with(tmp_path, CLASSIC)
    # When a stack is started from it
    written = init_stack(folder / "docker-compose.yml")
    # Then the farm's own loader reads the manifest written beside it: nginx is the entry at its container port,
    # the app is scaled and reached replica by replica, MySQL stays at one replica
    manifest = load_manifest(folder)
    recipe = manifest.compose_recipe()
    assert (recipe.file, recipe.entry, recipe.port) == ("docker-compose.yml", "web", 80)
    assert recipe.instances == ("app",) and recipe.scale == ("app",) and set(manifest.scalable) == {"app"}
    assert manifest.health == "/" and manifest.name == "team-stack"
    # And it says what it guessed, with the database left alone and why
    assert any("db: one replica (a database or cache: mysql:8)" in line for line in written.guess.guessed)
    # And a starting locustfile was written beside it, so the static check finds nothing wrong (notes only)
    assert written.files == (folder / "stack.yaml", folder / "locustfile.py")
    _manifest, points = check_folder(folder)
    assert not failed(points), points
    assert {p.name for p in points} >= {"manifest", "recipe paths", "compose recipe", "locustfile", "compose file"}


def test_with_no_published_port_the_service_in_front_is_the_entry(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, NOTHING_PUBLISHED)
    written = init_stack(folder / "docker-compose.yml")
    recipe = load_manifest(folder).compose_recipe()
    # Then the one nothing depends on is the entry (published by the farm itself), the built api is scaled
    assert (recipe.entry, recipe.port, recipe.scale) == ("front", 80, ("api",))
    assert any("entry: no service publishes a port" in line for line in written.guess.to_check)
    assert any("port: 80 is a guess" in line for line in written.guess.to_check)
    # And Redis is suggested as the reset and the hit ratio's source, commented out
    assert "# reset: {exec: {service: cache, command: [redis-cli, FLUSHALL]}}" in written.guess.text


def test_of_several_published_ports_the_front_http_service_is_the_entry(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, SEVERAL_PUBLISHED)
    written = init_stack(folder / "docker-compose.yml")
    manifest = load_manifest(folder)
    recipe = manifest.compose_recipe()
    # Then not the database listed first, but the web front, at its HTTP container port (8080:80 read as text,
    # not YAML 1.1's base-60 number)
    assert (recipe.entry, recipe.port) == ("web", 80)
    # And a service with a fixed container_name is not scaled; the others that publish are named to check
    assert recipe.scale == ("app",)
    assert any("worker: one replica (a fixed container_name" in line for line in written.guess.guessed)
    assert any("sidecar: one replica (network_mode" in line for line in written.guess.guessed)
    assert any("adminer 8081:8080" in line and "db 5432:5432" in line for line in written.guess.to_check)
    # And the app exposes 8000, not the entry's port: said
    assert any("container port 80" in line and "app" in line for line in written.guess.to_check)


def test_build_instead_of_image_loads_and_the_check_says_what_to_do(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, BUILT)
    written = init_stack(folder / "docker-compose.yml")
    recipe = load_manifest(folder).compose_recipe()
    assert (recipe.entry, recipe.port, recipe.scale) == ("web", 80, ("app",))
    assert any("--no-build" in line for line in written.guess.to_check)
    # And the static check reports it as a problem with its fix (the farm does not build a team's `build:`)
    _manifest, points = check_folder(folder)
    [compose] = [p for p in points if p.name == "compose file"]
    assert compose.status == "problem" and "web, app" in compose.detail and "image" in compose.fix


def test_the_classic_compose_example_is_guessed_as_its_authors_wrote_it(tmp_path: Path) -> None:
    folder = tmp_path / "classic"
    shutil.copytree(ROOT / "examples" / "stacks" / "classic-compose", folder)
    (folder / "stack.yaml").unlink()
    written = init_stack(folder / "docker-compose.yml")
    recipe = load_manifest(folder).compose_recipe()
    theirs = load_manifest(ROOT / "examples" / "stacks" / "classic-compose").compose_recipe()
    assert (recipe.entry, recipe.instances, recipe.scale, recipe.port) == \
        (theirs.entry, theirs.instances, theirs.scale, theirs.port)
    # And its own locustfile is kept, not replaced by a starting one
    assert written.files == (folder / "stack.yaml",)
    assert any("redis: one replica (a database or cache: redis-server)" in g for g in written.guess.guessed)


def test_an_existing_manifest_is_never_replaced_without_force(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CLASSIC)
    (folder / "stack.yaml").write_text("mine\n")
    with pytest.raises(SpecError, match="exists; farm stack init never replaces it"):
        init_stack(folder / "docker-compose.yml")
    assert (folder / "stack.yaml").read_text() == "mine\n"
    init_stack(folder / "docker-compose.yml", force=True)
    assert load_manifest(folder).compose_recipe().entry == "web"


@pytest.mark.parametrize("text, says", [("services: [", "not YAML"), ("version: '3'\n", "no services"),
                                        ("services:\n  web: {image: x, ports: 80}\n", "ports must be a list")])
def test_a_compose_file_it_cannot_parse_is_one_line(tmp_path: Path, text: str, says: str) -> None:
    folder = folder_with(tmp_path, text)
    with pytest.raises(SpecError, match=says):
        init_stack(folder / "docker-compose.yml")
    assert not (folder / "stack.yaml").exists()


def test_the_cli_writes_refuses_and_checks_with_its_exit_codes(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CLASSIC)
    # When init runs: exit 0, what it guessed and what to check
    first = farm("stack", "init", "--from", str(folder / "docker-compose.yml"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "guessed:" in first.stdout and "check:" in first.stdout and "entry: web" in first.stdout
    # When it runs again: one line, exit 2, the manifest untouched
    again = farm("stack", "init", "--from", str(folder / "docker-compose.yml"), cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    # When the compose file is missing or outside the folder: one line, exit 2
    missing = farm("stack", "init", "--from", str(tmp_path / "nope.yml"), cwd=tmp_path)
    outside = farm("stack", "init", "--from", str(folder / "docker-compose.yml"), str(tmp_path / "x"), cwd=tmp_path)
    for result in (missing, outside):
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    # And check: 0 for the folder init wrote, 1 once its locustfile is gone, 2 for a folder without a stack
    assert farm("stack", "check", str(folder), cwd=tmp_path).returncode == 0
    (folder / "locustfile.py").unlink()
    broken = farm("stack", "check", str(folder), cwd=tmp_path)
    assert broken.returncode == 1 and "problem locustfile: locustfile.py: no such file" in broken.stdout
    assert "fix: write the load scenario there" in broken.stdout
    assert farm("stack", "check", str(tmp_path), cwd=tmp_path).returncode == 2


@pytest.mark.parametrize("stack", ["stacks/shop", "stacks/wordpress", "examples/stacks/classic-compose"])
def test_the_stacks_shipped_with_the_farm_pass_the_static_check(stack: str) -> None:
    _manifest, points = check_folder(ROOT / stack)
    assert not failed(points), [p for p in points if p.status == "problem"]


def test_a_manifest_that_does_not_load_is_one_problem_with_its_fix(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CLASSIC)
    (folder / "stack.yaml").write_text("name: x\nlocustfile: l.py\ncompose: {file: ../../etc/passwd, entry: web, "
                                       "instances: [web]}\n")
    manifest, points = check_folder(folder)
    assert manifest is None and [(p.name, p.status) for p in points] == [("manifest", "problem")]
    assert "outside the stack folder" in points[0].detail and points[0].fix


@pytest.mark.parametrize("compose, says", [
    ("services:\n  web: {image: nginx, ports: ['8080:80']}\n  app: {image: a, container_name: the-app}\n",
     "app: a fixed container_name cannot be scaled"),
    ("services:\n  web: {image: nginx, ports: ['8080:80']}\n  app: {image: a, network_mode: host}\n",
     "services.app sets network_mode"),
    ("services:\n  web: {image: nginx, ports: ['8080:80']}\n", "the recipe names app"),
])
def test_what_the_driver_would_refuse_in_a_teams_file_is_a_problem(tmp_path: Path, compose: str, says: str) -> None:
    # Given a manifest that scales and reaches `app`, and a compose file the driver could not run it with
    folder = folder_with(tmp_path, compose)
    (folder / "l.py").write_text("")
    (folder / "stack.yaml").write_text("name: x\nlocustfile: l.py\ncompose: {file: docker-compose.yml, entry: web, "
                                       "instances: [app], scale: [app], port: 80}\n")
    _manifest, points = check_folder(folder)
    [compose_point] = [p for p in points if p.name == "compose file"]
    assert compose_point.status == "problem" and says in compose_point.detail, compose_point
    assert compose_point.fix
