"""Packages for setuptools: the farm's own, plus the built-in stacks and locustfiles as package data.

The repository keeps ``stacks/`` and ``locustfiles/`` at its top level; a wheel ships them as
``farm/_builtin/stacks`` and ``farm/_builtin/locustfiles`` so that an installed farm finds them too (the relative
``locustfile: ../../locustfiles/x.py`` in each ``stack.yaml`` holds in both layouts). Everything else is in
pyproject.toml; this file exists only because ``packages.find`` cannot be combined with a package-dir mapping there.
"""

from __future__ import annotations

from setuptools import find_namespace_packages, setup

BUILTIN = {"farm._builtin.stacks": "stacks", "farm._builtin.locustfiles": "locustfiles"}


def _packages() -> list[str]:
    # Every folder under a built-in root is listed (as a namespace) so setuptools copies it without warnings;
    # the package-data globs in pyproject.toml bring their non-Python files.
    own = find_namespace_packages(include=["farm*", "scheduler*", "workers*"])
    builtin = [f"{name}.{sub}" for name, folder in BUILTIN.items() for sub in find_namespace_packages(folder)]
    return [*own, *BUILTIN, *builtin]


setup(packages=_packages(), package_dir=BUILTIN)
