"""What a sweep runs: the resolved stack folder (built-in, local, or shadowing a built-in) and the locustfile."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.sources import builtin_stack, what_runs
from farm.spec import load_sweep
from farm.stacks.manifest import BUILTIN_STACKS

MANIFEST = """\
name: {name}
locustfile: scenario.py
local:
  entry: app
  services:
    - name: app
      command: [python3, -c, "pass"]
"""


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder outside the clone, so only the built-in stacks and what a test writes can be found."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def a_stack(folder: Path, name: str) -> Path:
    """A minimal user stack folder with its own scenario."""
    folder.mkdir(parents=True)
    (folder / "stack.yaml").write_text(MANIFEST.format(name=name))
    (folder / "scenario.py").write_text("# a user's scenario\n")
    return folder


def a_sweep(folder: Path, stack: str, extra: str = "") -> Path:
    path = folder / "sweep.yaml"
    path.write_text(f"name: s\nstack: {stack}\nmatrix: {{users: [1]}}\n{extra}")
    return path


def test_a_builtin_stack_is_named_as_such_with_its_locustfile(elsewhere: Path) -> None:
    # Given a sweep naming the built-in shop from a folder that has no stack of that name
    sweep = a_sweep(elsewhere, "shop")

    # When we ask what it runs
    lines = what_runs(load_sweep(sweep))

    # Then the built-in folder and its locustfile are named, by absolute path
    shop = (BUILTIN_STACKS / "shop").resolve()
    assert lines == [f"stack: {shop} (built-in)", f"locustfile: {(shop / '../../locustfiles/shop.py').resolve()}"]
    assert Path(lines[1].removeprefix("locustfile: ")).is_file()


def test_a_local_folder_named_like_a_builtin_stack_is_pointed_out_as_shadowing_it(elsewhere: Path) -> None:
    # Given a local folder called `shop` beside a sweep that says `stack: shop`
    local = a_stack(elsewhere / "shop", "shop")
    sweep = a_sweep(elsewhere, "shop")

    # When we ask what it runs
    lines = what_runs(load_sweep(sweep))

    # Then the local folder is the one that runs, and the line says it shadows the built-in stack
    assert lines[0] == f"stack: {local.resolve()} — a local folder that shadows the built-in stack 'shop'"
    assert lines[1] == f"locustfile: {(local / 'scenario.py').resolve()}"


def test_a_shadowing_folder_under_stacks_of_the_working_folder_is_pointed_out_too(elsewhere: Path) -> None:
    # Given `./stacks/sleepy` in the working folder and a sweep elsewhere naming `sleepy`
    local = a_stack(elsewhere / "stacks" / "sleepy", "sleepy")
    (elsewhere / "sweeps").mkdir()
    sweep = a_sweep(elsewhere / "sweeps", "sleepy")

    # When / Then the working folder's copy wins, and that is said
    assert what_runs(load_sweep(sweep))[0] == (
        f"stack: {local.resolve()} — a local folder that shadows the built-in stack 'sleepy'")


def test_a_local_stack_with_its_own_name_is_a_local_folder_and_a_sweep_locustfile_wins(elsewhere: Path) -> None:
    # Given a user stack with a name of its own, and a sweep that brings its own locustfile
    local = a_stack(elsewhere / "mine", "mine")
    (elsewhere / "other.py").write_text("# the sweep's scenario\n")
    sweep = a_sweep(elsewhere, "./mine", "load: {locustfile: other.py}\n")

    # When / Then
    assert what_runs(load_sweep(sweep)) == [
        f"stack: {local.resolve()} (a local folder)",
        f"locustfile: {(elsewhere / 'other.py').resolve()}",
    ]


def test_a_path_with_a_newline_stays_on_one_line(elsewhere: Path) -> None:
    # Given a sweep and its stack inside a folder whose name holds a newline
    odd = elsewhere / "odd\nname"
    local = a_stack(odd / "mine", "mine")
    sweep = a_sweep(odd, "./mine")

    # When we ask what it runs
    lines = what_runs(load_sweep(sweep))

    # Then each entry is one line, the newline shown escaped
    assert all("\n" not in line for line in lines)
    assert lines[0] == f"stack: {str(local.resolve()).replace(chr(10), chr(92) + 'n')} (a local folder)"


def test_only_plain_names_of_existing_builtin_stacks_are_builtin() -> None:
    assert builtin_stack("shop") == (BUILTIN_STACKS / "shop").resolve()
    assert builtin_stack("nope") is None
    assert builtin_stack("../stacks/shop") is None
    assert builtin_stack("..") is None
    assert builtin_stack("") is None
