"""An installed farm (a built wheel, not the clone) finds its built-in stacks and locustfiles from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

# What a wheel is built from; copied so the build's own folders (build/, *.egg-info) stay out of the clone.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "farm", "scheduler", "workers", "stacks", "locustfiles")

PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import farm
    from farm.spec import load_sweep, locustfile_for
    from farm.stacks.manifest import load_manifest, resolve_stack_folder

    shop = resolve_stack_folder("shop")
    sleepy = load_manifest(resolve_stack_folder("sleepy"))
    loaded = load_sweep(Path("sweep.yaml"))
    print(json.dumps({
        "farm": farm.__file__,
        "shop": str(shop),
        "shop_files": sorted(str(p.relative_to(shop)) for p in shop.rglob("*") if p.is_file()),
        "sleepy_locustfile": str(sleepy.locustfile_path()),
        "sweep_stack": str(loaded.manifest.folder),
        "sweep_locustfile": str(locustfile_for(loaded)),
    }))
""")


def build_and_install(tmp_path: Path) -> Path:
    """Build a wheel from a copy of the clone (no network: the venv's setuptools) and install it into a folder."""
    src = tmp_path / "src"
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=junk)
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"),
                    str(src)], check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("loadfarm-*.whl")
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    return site


def test_an_installed_farm_finds_the_builtin_stacks_and_locustfiles_from_any_folder(tmp_path: Path) -> None:
    # Given a wheel built from this clone, installed into its own folder, and a sweep naming `stack: shop`
    # in an unrelated working folder that holds no stacks
    site = build_and_install(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sweep.yaml").write_text("name: installed\nstack: shop\nmatrix: {users: [2]}\n")

    # When the installed farm (first on the path, ahead of the clone's editable install) resolves them there
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FARM_STACKS_DIR")}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=elsewhere, capture_output=True, text=True,
                            env={**env, "PYTHONPATH": str(site)}, timeout=60)

    # Then the installed copy answers, from its own package data: the shop's manifest, app code and template,
    # the locustfiles of both stacks, and a sweep that names the shop by name
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["farm"]).is_relative_to(site)
    builtin = site / "farm" / "_builtin"
    assert Path(found["shop"]) == builtin / "stacks" / "shop"
    assert {"stack.yaml", "app/shop.py", "nginx.conf.j2", "README.md"} <= set(found["shop_files"])
    assert Path(found["sleepy_locustfile"]) == builtin / "locustfiles" / "sleepy.py"
    assert Path(found["sleepy_locustfile"]).is_file()
    assert Path(found["sweep_stack"]) == builtin / "stacks" / "shop"
    assert Path(found["sweep_locustfile"]) == builtin / "locustfiles" / "shop.py"
    assert Path(found["sweep_locustfile"]).read_text() == (ROOT / "locustfiles" / "shop.py").read_text()
