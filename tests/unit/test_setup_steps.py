"""Manifest setup steps: what a stack.yaml may say about one-time steps and services started before them."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.stacks.manifest import ReadyCommand, load_manifest
from tests.conftest import ROOT

HEAD = """\
name: s
locustfile: scenario.py
local:
  entry: app
"""
DB = """\
    - name: db
      start: before-setup
      ready: {command: [mariadb, --execute, "SELECT 1"], timeout: 3}
      command: [mariadbd]
"""
APP = """\
    - name: app
      command: [app]
"""


def manifest_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "stack.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_manifest(tmp_path)
    return str(caught.value)


def test_setup_steps_are_read_in_order_with_their_timeouts(tmp_path: Path) -> None:
    # Given a recipe with a database before setup, two steps and an app after them
    (tmp_path / "stack.yaml").write_text(HEAD + "  services:\n" + DB + APP + """\
  setup:
    - {name: schema, command: [sh, -c, "echo schema"], timeout: 15}
    - {name: seed, command: [php, seed.php, "{{ params.posts }}"], when: {posts: [10, 20]}}
""")
    # When it is read
    recipe = load_manifest(tmp_path).local
    # Then the steps keep their order, timeout (120 s unless given) and condition
    assert [(s.name, s.timeout) for s in recipe.setup] == [("schema", 15.0), ("seed", 120.0)]
    assert recipe.setup[1].enabled({"posts": 10}) and not recipe.setup[1].enabled({"posts": 30})
    # And the database starts before setup with a command for readiness; the app after it, ready over HTTP
    db, app = recipe.services
    assert db.start == "before-setup" and app.start == "after-setup"
    assert db.ready == ReadyCommand(command=("mariadb", "--execute", "SELECT 1"), timeout=3.0)
    assert app.ready == "http"


def test_a_stack_without_setup_reads_as_before(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(HEAD + "  services:\n" + APP)
    assert load_manifest(tmp_path).local.setup == ()


@pytest.mark.parametrize(("setup", "services", "expected"), [
    ("  setup:\n    - {name: a, command: [x]}\n    - {name: a, command: [y]}\n", APP,
     "setup step names must be unique"),
    ("", DB + APP, "db start before setup, but the recipe has no setup steps"),
    ("  setup:\n    - {name: a, command: [x]}\n",
     "    - name: app\n      start: before-setup\n      command: [app]\n", "entry 'app' cannot start before setup"),
    ("  setup:\n    - {name: a, command: [x], timeout: 0}\n", APP, "local.setup.0.timeout"),
    ("  setup:\n    - {name: a, command: []}\n", APP, "local.setup.0.command"),
    ("  setup:\n    - {name: ../a, command: [x]}\n", APP, "local.setup.0.name"),
    ("  setup:\n    - {name: a, command: [x], retries: 3}\n", APP, "local.setup.0.retries"),
    ("", "    - {name: app, command: [app], start: first}\n", "local.services.0.start"),
    ("", "    - {name: app, command: [app], ready: {command: []}}\n", "local.services.0.ready"),
])
def test_a_bad_setup_is_refused_naming_the_field(tmp_path: Path, setup: str, services: str, expected: str) -> None:
    # Given a manifest whose setup or services break a rule; when it is read, then one line names what and where
    message = manifest_error(tmp_path, HEAD + "  services:\n" + services + setup)
    assert expected in message and "stack.yaml" in message
    assert "\n" not in message


def test_the_wordpress_stack_starts_its_database_before_installing_the_site() -> None:
    recipe = load_manifest(ROOT / "stacks" / "wordpress").local
    assert [s.name for s in recipe.services if s.start == "before-setup"] == ["db"]
    assert [s.name for s in recipe.setup] == ["site", "install"]
    ready = recipe.services[0].ready
    # readiness is a query as the site's user over TCP, not a TCP connect or `mysqladmin ping`
    assert isinstance(ready, ReadyCommand) and "--protocol=tcp" in ready.command
    assert "--user=wordpress" in ready.command and "--execute=SELECT 1" in ready.command


@pytest.mark.parametrize("name", ["users", "rate", "instances"])
def test_a_stack_parameter_cannot_take_a_name_the_sweep_sets(tmp_path: Path, name: str) -> None:
    # Given a manifest declaring a parameter the sweep's load levels or instance counts would override
    (tmp_path / "stack.yaml").write_text(f"name: s\nlocustfile: scenario.py\nparameters:\n"
                                         f"  {name}: {{type: int, default: 1}}\n"
                                         "local:\n  entry: app\n  services:\n" + APP)
    # Then loading it is refused in one line that names the parameter
    with pytest.raises(SpecError, match=f"'{name}' is set by the sweep"):
        load_manifest(tmp_path)
