"""A stack folder stays closed: every file its recipes name resolves inside it, symlinks included.

A manifest names template and build-context paths relative to its folder (`files`, setup `files`, the compose
`file`, `files` and `images`). Without this check, ``files: {x: ../../../etc/shadow}`` or a symlink in a build
context would render or upload a file from anywhere this user can read — to a SUT host, or into a log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from farm.errors import SpecError
from farm.stacks.compose_limits import LIMITS_FILE
from farm.stacks.manifest import StackManifest

RESERVED = ("compose.yaml", LIMITS_FILE)  # the project's files the farm writes itself


def check_closed(manifest: StackManifest) -> None:
    """Refuse a manifest one of whose recipe paths (or a symlink in a build context) leaves its stack folder."""
    root = manifest.folder.resolve()
    for where, relative in recipe_paths(manifest):
        _inside(root, where, relative)
    if manifest.compose is not None:
        for image, context in manifest.compose.images.items():
            for link in _symlinks(root / context):
                target = link.resolve()
                if not target.is_relative_to(root):
                    raise SpecError(f"compose.images.{image}: {link.relative_to(root)} links to {target}, outside "
                                    "the stack folder", hint="copy the file into the build context instead")
    for where, name in rendered_names(manifest):
        parts = PurePosixPath(name).parts
        if not name or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
            raise SpecError(f"{where}: {name!r} must be a name inside the deployment's folder (relative, no '..')")
        if where == "compose.files" and name in RESERVED:
            raise SpecError(f"{where}: {name!r} is the farm's own file in the project; choose another name")


def recipe_paths(manifest: StackManifest) -> Iterator[tuple[str, str]]:
    """Every path a recipe reads from the stack folder, with the field that names it."""
    local = manifest.local
    for service in local.services if local else ():
        for target, template in service.files.items():
            yield f"local.services.{service.name}.files.{target}", template
    for step in local.setup if local else ():
        for target, template in step.files.items():
            yield f"local.setup.{step.name}.files.{target}", template
    if manifest.compose is not None:
        yield "compose.file", manifest.compose.file
        for target, template in manifest.compose.files.items():
            yield f"compose.files.{target}", template
        for image, context in manifest.compose.images.items():
            yield f"compose.images.{image}", context


def rendered_names(manifest: StackManifest) -> Iterator[tuple[str, str]]:
    """Every name a rendered file gets in a deployment's folder, with the field that gives it."""
    local = manifest.local
    for service in local.services if local else ():
        for target in service.files:
            yield f"local.services.{service.name}.files", target
    for step in local.setup if local else ():
        for target in step.files:
            yield f"local.setup.{step.name}.files", target
    if manifest.compose is not None:
        for target in manifest.compose.files:
            yield "compose.files", target


def _inside(root: Path, where: str, relative: str) -> None:
    if Path(relative).is_absolute():
        raise SpecError(f"{where}: {relative!r} is an absolute path; name a file inside the stack folder",
                        hint="paths in a manifest are relative to its folder")
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise SpecError(f"{where}: {relative!r} resolves to {resolved}, outside the stack folder {root}",
                        hint="keep every file a recipe uses inside the stack folder (copy it there)")


def _symlinks(folder: Path) -> Iterator[Path]:
    """Symlinks below ``folder`` (not followed)."""
    if not folder.is_dir():
        return
    for top, dirs, names in os.walk(folder, followlinks=False):
        for name in [*dirs, *names]:
            path = Path(top) / name
            if path.is_symlink():
                yield path
