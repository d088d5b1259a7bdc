"""`farm … --help` names every value meaningfully; a usage error is one line and exit 2."""

from __future__ import annotations

import re
from typing import Any

import pytest

from farm.cli import build_command, main
from tests.conftest import ROOT, farm

TYPE_METAVAR = re.compile(r"<(bool|str|int|float|path|list\[[a-z]+\])>")


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the tree, as the words that reach it."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


def help_text(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    """What `farm WORDS --help` prints."""
    with pytest.raises(SystemExit) as exit_:
        main_with(["farm", *words, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def main_with(argv: list[str]) -> None:
    """Run the real entry point with this command line."""
    import sys

    saved = sys.argv
    sys.argv = argv
    try:
        main()
    finally:
        sys.argv = saved


def test_no_help_page_shows_a_python_type_as_a_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    # Given every command of the CLI (including groups and the root)
    paths = command_paths(build_command())
    assert ("run",) in paths and ("stack", "up") in paths and ("flower",) in paths and len(paths) >= 15
    for words in paths:
        # When its help is shown
        text = help_text(words, capsys)
        # Then no option or argument is described by a Python type such as <bool>, <str>, <int>
        assert "Usage:" in text, words
        assert TYPE_METAVAR.search(text) is None, (words, TYPE_METAVAR.search(text))


def test_values_are_named_and_flags_take_none(capsys: pytest.CaptureFixture[str]) -> None:
    # When `farm run --help` and `farm status --help` are shown
    run = help_text(("run",), capsys)
    status = help_text(("status",), capsys)
    # Then the values are named for what they are, and help text in brackets survives
    assert re.search(r"--db\s+URL", run) and re.search(r"--report\s+-o\s+FILE", run)
    assert "SWEEP.yaml" in run and "[env FARM_DATABASE_URL" in run
    assert re.search(r"\[default:\W+reports/NAME\.html\]", run)
    assert "NAME" in status
    # And a flag is followed by its help, not by a value
    assert re.search(r"--help\s+Show this message", run)
    assert re.search(r"--watch\s+-w\s+refresh", status)


@pytest.mark.parametrize(("args", "needle"), [
    (("refine", "x", "--points", "abc"), "'--points'"),
    (("run", "--bogus"), "--bogus"),
    (("stack", "up"), "Missing argument 'STACK'"),
    (("nosuchcommand",), "nosuchcommand"),
])
def test_a_usage_error_is_one_line_and_exit_2(args: tuple[str, ...], needle: str) -> None:
    # When the CLI is called wrongly
    result = farm(*args, cwd=ROOT)
    # Then it says so in one line naming the culprit and the help to read, exit 2, no traceback
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert "--help`" in lines[0] and "internal error" not in lines[0]
