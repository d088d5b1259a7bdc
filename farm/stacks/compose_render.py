"""A compose recipe rendered for one deployment: the compose file, the farm's limits override and the extra files,
and the tags of the images it builds (each the hash of its build context, so a second sweep builds nothing)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
import yaml

from farm.errors import SpecError
from farm.stacks import compose_limits as guard
from farm.stacks import templates
from farm.stacks.manifest import ComposeRecipe, Scalar, StackManifest
from farm.stacks.scaling import compose_replicas
from farm.text import tail

_SKIP = ("__pycache__", ".pyc", ".git")


def image_tags(manifest: StackManifest, recipe: ComposeRecipe) -> dict[str, str]:
    """Each image of the recipe and its tag, `loadfarm/<stack>-<image>:<hash of its build context>`."""
    return {image: f"loadfarm/{manifest.name}-{image}:{context_hash(manifest.folder / context)}"
            for image, context in recipe.images.items()}


def used_images(compose_file: str, tags: dict[str, str]) -> dict[str, str]:
    """The recipe's images that the rendered compose file's services name (the others need no build)."""
    try:
        services = (yaml.safe_load(compose_file) or {}).get("services") or {}
    except yaml.YAMLError as exc:
        raise SpecError(f"the rendered compose file is not YAML: {tail(str(exc), 5, 300)}") from exc
    named = {str(spec.get("image")) for spec in services.values() if isinstance(spec, dict)}
    return {image: tag for image, tag in tags.items() if tag in named}


def context_hash(folder: Path) -> str:
    """A hash of a build context's files (paths and contents): the image tag, so a second sweep does not rebuild."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not any(s in str(p) for s in _SKIP)):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def compose_recipe(manifest: StackManifest) -> ComposeRecipe:
    """The stack's compose recipe; SpecError when it has none."""
    return manifest.compose_recipe()


def render_project(manifest: StackManifest, recipe: ComposeRecipe, params: dict[str, Scalar], project: str,
            images: dict[str, str], *, bind: str = "127.0.0.1", token: str = "") -> dict[str, str]:
    """The compose file and every extra file, rendered with the deployment's names of every replica."""
    instances, counts = int(params.get("instances", 1)), compose_replicas(manifest, params, recipe.scale)
    names = {s: [f"{project}-{s}-{i}" for i in range(1, counts.get(s, 1) + 1)]
             for s in {*recipe.scale, *recipe.instances, recipe.entry}}
    context = {"params": params, "project": project, "images": images, "replicas": names,
               "upstreams": {s: [f"{n}:{recipe.port}" for n in ns] for s, ns in names.items()},
               "port": recipe.port, "instances": instances, "bind": bind,
               "publish": guard.publish_address(bind, recipe.port), "token": token}
    source = manifest.folder / recipe.file
    # a plain compose file (not .j2) is the team's own: used as it is (farm/stacks/compose_override.py)
    rendered = {"compose.yaml": _render_file(source, context) if source.suffix == ".j2" else _read(source)}
    limits = recipe.limits
    rendered[guard.LIMITS_FILE] = guard.limits_override(rendered["compose.yaml"], limits.pids, limits.memory,
                                                        project)
    for target, template in recipe.files.items():
        if Path(target).is_absolute() or ".." in Path(target).parts:
            raise SpecError(f"compose file name {target!r} must stay inside the project folder",
                            hint="name it relative to the project, without '..'")
        source = manifest.folder / template
        # a `.j2` file is a template; any other (a PHP drop-in, a script) goes to the host byte for byte
        rendered[target] = _render_file(source, context) if source.suffix == ".j2" else _read(source)
    return rendered


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _render_file(path: Path, context: dict[str, Any]) -> str:
    try:
        return templates.render(path.read_text(), context)
    except OSError as exc:
        raise SpecError(f"cannot read the template {path}: {exc.strerror or exc}") from exc
    except jinja2.TemplateError as exc:
        raise SpecError(f"{path}: template error: {exc}") from exc
