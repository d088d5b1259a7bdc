"""A stack folder stays closed: recipe paths resolve inside it, and compose services get default limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from farm.errors import SpecError
from farm.stacks.compose_render import render_project as _render
from farm.stacks.manifest import load_manifest

MANIFEST = """name: t
locustfile: l.py
local:
  entry: app
  services: [{name: app, command: [x], files: {app.conf: {service_file}}}]
  setup: [{name: init, command: [x], files: {init.sql: {setup_file}}}]
compose: {file: {compose_file}, images: {app: {context}}, instances: [app], entry: app}
"""


def stack(tmp_path: Path, **paths: str) -> Path:
    """A stack folder inside ``tmp_path``, its recipe paths as given (defaults: files inside it)."""
    folder = tmp_path / "stack"
    (folder / "ctx").mkdir(parents=True)
    (folder / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (folder / "app.conf").write_text("x")
    (folder / "init.sql").write_text("x")
    (folder / "compose.yaml.j2").write_text("services:\n  app: {image: x, ports: ['8080']}\n"
                                            "  db: {image: y, pids_limit: 50, mem_limit: 256m}\n"
                                            "  cache: {image: z, deploy: {resources: {limits: {memory: 64m}}}}\n")
    (tmp_path / "secret.txt").write_text("outside")
    values = {"service_file": "app.conf", "setup_file": "init.sql", "compose_file": "compose.yaml.j2",
              "context": "ctx", **paths}
    text = MANIFEST
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    (folder / "stack.yaml").write_text(text)
    return folder


@pytest.mark.parametrize(("paths", "field"), [
    ({"service_file": "../secret.txt"}, "local.services.app.files.app.conf: '../secret.txt' resolves to"),
    ({"setup_file": "/etc/passwd"}, "local.setup.init.files.init.sql: '/etc/passwd' is an absolute path"),
    ({"compose_file": "../secret.txt"}, "compose.file: '../secret.txt' resolves to"),
    ({"context": "../"}, "compose.images.app: '../' resolves to"),
    ({"service_file": "link.conf"}, "local.services.app.files.app.conf: 'link.conf' resolves to"),
])
def test_a_recipe_path_outside_the_stack_folder_is_refused(tmp_path: Path, paths: dict[str, str],
                                                          field: str) -> None:
    # Given a manifest naming a file outside its folder (directly, or through a symlink inside it)
    folder = stack(tmp_path, **paths)
    (folder / "link.conf").symlink_to(tmp_path / "secret.txt")
    # When it is loaded, then it is refused in one line naming the manifest and the field
    with pytest.raises(SpecError) as caught:
        load_manifest(folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / 'stack.yaml'}: {field}"), message
    assert "outside the stack folder" in message or "absolute path" in message


def test_a_symlink_in_a_build_context_leading_outside_is_refused(tmp_path: Path) -> None:
    folder = stack(tmp_path)
    (folder / "ctx" / "key").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SpecError, match=r"compose.images.app: ctx/key links to .*secret.txt, outside the stack"):
        load_manifest(folder)


def test_symlinks_inside_the_folder_are_fine(tmp_path: Path) -> None:
    folder = stack(tmp_path, service_file="inner.conf")
    (folder / "inner.conf").symlink_to(folder / "app.conf")
    (folder / "ctx" / "again").symlink_to(folder / "ctx" / "Dockerfile")
    assert load_manifest(folder).name == "t"


def test_every_compose_service_gets_a_pids_and_memory_limit_unless_it_sets_its_own(tmp_path: Path) -> None:
    # Given a compose file with a service without limits, one with its own, one with a deploy memory limit
    manifest = load_manifest(stack(tmp_path))
    assert manifest.compose is not None
    # When it is rendered for a deployment
    rendered = _render(manifest, manifest.compose, {"instances": 1}, "p", {"app": "t-app:1"})
    # Then an override file gives the first the defaults, the others keep theirs; the stack's file is untouched
    # And every service carries the farm's label, naming the deployment (what a SUT host's lease holder removes)
    label = {"labels": {"io.loadfarm.deployment": "p"}}
    assert yaml.safe_load(rendered["farm-limits.yaml"])["services"] == {
        "app": {"pids_limit": 1024, "mem_limit": "2g", **label}, "cache": {"pids_limit": 1024, **label},
        "db": label}
    assert rendered["compose.yaml"] == (manifest.folder / "compose.yaml.j2").read_text()


def test_the_builtin_stacks_load_and_bound_their_open_numbers() -> None:
    from tests.conftest import ROOT

    wordpress = load_manifest(ROOT / "stacks" / "wordpress")
    assert wordpress.parameters["php_workers"].refusal(1000) is not None
    assert wordpress.parameters["php_workers"].refusal(8) is None
    for name in ("shop", "sleepy"):
        manifest = load_manifest(ROOT / "stacks" / name)
        numbers = [p for p in manifest.parameters.values() if p.values is None and p.kind in ("int", "float")]
        assert numbers and all(p.min is not None and p.max is not None for p in numbers), name
