"""A scenario shipped with the farm, imported by path for a test's variant of it (not itself a locustfile)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def scenario(relative: str) -> ModuleType:
    """The locustfile at ``relative`` (from the repository's root) as a module of its own name.

    Locust runs every User class it finds in a locustfile's namespace: a variant imports the module, never the
    class, so that only its own subclass runs.
    """
    name = "bundled_" + relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / relative)
        assert spec is not None and spec.loader is not None, relative
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
