"""Every built-in stack renders the same under the one template dialect as it did under the two: each stack's
process recipe and compose recipe, over its parameters' values, pinned by a digest of what they render.

Regenerate the pins (only when a template's output is meant to change) with
``FARM_PIN_TEMPLATES=1 pytest tests/unit/test_template_dialect.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from farm.stacks import local
from farm.stacks.compose_render import render_project as _render
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import Scalar, StackManifest, load_manifest
from tests.conftest import ROOT

PINS = Path(__file__).with_name("rendered_templates.json")
STACKS = [ROOT / "stacks" / n for n in ("shop", "sleepy", "wordpress")] + \
         [ROOT / "tests" / "stacks" / n for n in ("calibrated", "contract", "hanging")]


def combinations(manifest: StackManifest) -> list[dict[str, Scalar]]:
    """Every closed parameter's values crossed (a long list cut to its first, default and last), at 1 and 2
    instances; open parameters at their defaults."""
    closed = {}
    for name, p in manifest.parameters.items():
        if p.values:
            values = list(p.values)
            closed[name] = values if len(values) <= 3 else list(dict.fromkeys([values[0], p.default, values[-1]]))
    combos = []
    for values in itertools.product(*closed.values()):
        for instances in (1, 2):
            combos.append({**manifest.defaults(), **dict(zip(closed, values, strict=True)), "instances": instances})
    return combos


def key(stack: Path, params: dict[str, Scalar]) -> str:
    return f"{stack.name}:" + ",".join(f"{k}={v}" for k, v in sorted(params.items()))


def normalised(value: Any, replacements: dict[str, str]) -> Any:
    text = json.dumps(value, sort_keys=True)
    for old, new in replacements.items():
        text = text.replace(json.dumps(old)[1:-1], new)
    return text


def render_local(manifest: StackManifest, params: dict[str, Scalar], tmp: Path, user: str,
                 monkeypatch: pytest.MonkeyPatch) -> str:
    ports = itertools.count(20000)
    monkeypatch.setattr(local, "free_port", lambda: next(ports))
    monkeypatch.setattr(local, "new_token", lambda: "TOKEN")
    monkeypatch.setattr(local, "_user_name", lambda: user)
    workdir = tmp / "w"
    workdir.mkdir()
    rendered = LocalDriver(tmp / "root").render(manifest, params, workdir)
    out = {"commands": [[s.name, e.replica, c] for s, e, c in rendered.plans],
           "steps": [[s.name, c] for s, c in rendered.steps],
           "checks": sorted([list(k), v] for k, v in rendered.checks.items()),
           "files": {p.name: p.read_text() for p in sorted(workdir.iterdir())}}
    return normalised(out, {str(workdir.resolve()): "WORKDIR", str(manifest.folder.resolve()): "STACK",
                            sys.executable: "PYTHON"})


def render_compose(manifest: StackManifest, params: dict[str, Scalar]) -> str:
    recipe = manifest.compose
    assert recipe is not None
    images = {image: f"loadfarm/{manifest.name}-{image}:TAG" for image in recipe.images}
    return normalised(_render(manifest, recipe, params, "proj", images, bind="10.0.0.1", token="TOKEN"), {})


def digests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    found: dict[str, str] = {}
    for stack in STACKS:
        manifest = load_manifest(stack)
        for i, params in enumerate(combinations(manifest)):
            for user in ("farmer", "root"):  # templates that start servers as root add a line for them
                tmp = tmp_path / f"{stack.name}-{i}-{user}"
                tmp.mkdir()
                with monkeypatch.context() as patch:
                    text = render_local(manifest, params, tmp, user, patch)
                found[f"local {key(stack, params)},user={user}"] = hashlib.sha256(text.encode()).hexdigest()[:16]
            if manifest.compose is not None:
                text = render_compose(manifest, params)
                found[f"compose {key(stack, params)}"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return found


def test_every_built_in_stack_renders_what_it_rendered_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given every built-in stack's recipes over their parameters' values
    # When each is rendered (ports, token, user and paths fixed)
    found = digests(tmp_path, monkeypatch)
    if os.environ.get("FARM_PIN_TEMPLATES") == "1":
        PINS.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    # Then each renders byte for byte what is pinned
    pinned = json.loads(PINS.read_text())
    assert len(found) > 40
    changed = sorted(k for k in found if pinned.get(k) != found[k])
    assert set(found) == set(pinned)
    assert changed == []
