"""The compose driver's pure parts: rendering a recipe (values stay literal), reading `compose ps`, image tags."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from farm.stacks.compose import _ps_rows, _render, context_hash
from farm.stacks.manifest import load_manifest

NASTY = """$(touch /tmp/pwned); rm -rf "*" 'x' `id` {{ 7*7 }} \\ #"""


def stack(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml.j2").write_text(
        "services:\n  app:\n    image: {{ images.app | tojson }}\n"
        "    command: {{ ['serve', '--motd', params.motd, '--peers', upstreams.app | join(',')] | tojson }}\n"
        "    ports: [\"8080\"]\n")
    (tmp_path / "stack.yaml").write_text(
        "name: t\nlocustfile: l.py\nparameters: {motd: {type: str, default: hi}}\n"
        "local: {entry: app, services: [{name: app, command: [x]}]}\n"
        "compose: {file: compose.yaml.j2, instances: [app], scale: [app], entry: app, port: 8080}\n")
    return tmp_path


def test_a_parameter_with_shell_and_template_metacharacters_reaches_the_compose_file_literally(
        tmp_path: Path) -> None:
    manifest = load_manifest(stack(tmp_path))
    rendered = _render(manifest, manifest.compose, {"motd": NASTY, "instances": 2}, "proj-1", {"app": "t-app:1"})
    command = yaml.safe_load(rendered["compose.yaml"])["services"]["app"]["command"]
    assert command == ["serve", "--motd", NASTY, "--peers", "proj-1-app-1:8080,proj-1-app-2:8080"]


def test_compose_ps_json_is_read_as_an_array_or_as_one_object_per_line() -> None:
    rows = [{"Name": "p-app-1", "Service": "app", "Publishers": [{"TargetPort": 8080, "PublishedPort": 32768}]},
            {"Name": "p-app-2", "Service": "app", "Publishers": []}]
    assert _ps_rows(json.dumps(rows)) == rows
    assert _ps_rows("\n".join(json.dumps(r) for r in rows)) == rows
    assert _ps_rows("") == []


def test_an_image_tag_changes_with_its_build_context_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    first = context_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert context_hash(tmp_path) == first
    (tmp_path / "app.py").write_text("print(1)\n")
    assert context_hash(tmp_path) != first
