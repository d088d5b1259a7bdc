"""The `farm` CLI prints every user string literally: sweep names, parameter values, paths, error text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from farm.importer import scan
from farm.store.repository import Store
from tests.conftest import farm

pytestmark = pytest.mark.integration

HEADER = ("Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
          "Max Response Time,Average Content Size,Requests/s,50%,90%,95%,99%,100%\n")
MARKUP = "[red]"
EMOJI = ":thumbs_up:"
NAME = "[/bold]x"
MESSAGE = "[bold]boom[/bold] in [link=file:///etc]here[/link]"


def classic_folder(root: Path) -> Path:
    """Two runs as the classic script wrote them, in a folder whose own name holds markup."""
    folder = root / "runs [bold]"
    folder.mkdir()
    for users in (2, 4):
        (folder / f"output_u_{users}_i_1_stats.csv").write_text(
            HEADER + "GET,/,100,0,10,11,1,30,5,20.0,10,15,18,25,30\n"
                     ",Aggregated,100,0,10,11,1,30,5,20.0,10,15,18,25,30\n")
    return folder


def legacy_store(workdir: Path) -> None:
    """A store holding what an older farm let in: a markup sweep name, markup values, a failed cell's markup."""
    store = Store(f"sqlite:///{workdir / 'farm.db'}")
    store.migrate()
    found = scan(classic_folder(workdir), {"architecture": EMOJI, "cache": MARKUP})
    store.import_sweep(NAME, {"stack": "classic-import"}, "# legacy\n", found.cells, host="h[i]")
    with sqlite3.connect(workdir / "farm.db") as conn:
        conn.execute("UPDATE cells SET status = 'failed', error_stage = 'load', error_category = 'internal', "
                     "error_message = ? WHERE users = 4", (MESSAGE,))


def test_an_import_under_a_markup_name_is_refused_in_one_line_and_stores_nothing(workdir: Path) -> None:
    # Given the classic script's CSVs
    folder = classic_folder(workdir)
    # When they are imported under a name that Rich would read as markup
    result = farm("import", str(folder), "--sweep", NAME, cwd=workdir)
    # Then the name is refused like `farm run` refuses it: exit 2, one line naming the option and the name as typed
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--sweep" in lines[0] and NAME in lines[0]
    assert "Traceback" not in result.stderr
    assert not (workdir / "farm.db").exists()


def test_parameter_values_and_paths_are_printed_as_typed(workdir: Path) -> None:
    # Given the classic script's CSVs in a folder whose name holds markup
    folder = classic_folder(workdir)
    # When they are imported with parameter values that are markup and an emoji code
    result = farm("import", str(folder), "--sweep", "legacy-1", "-p", f"cache={MARKUP}", "-p",
                  f"architecture={EMOJI}", cwd=workdir)
    # Then the import succeeds, and the results table shows the values literally
    assert result.returncode == 0, result.stderr
    assert "imported 2 cells into sweep legacy-1" in result.stdout
    table = farm("results", "legacy-1", cwd=workdir)
    assert table.returncode == 0, table.stderr
    assert MARKUP in table.stdout and EMOJI in table.stdout
    # And an unreadable file's path is printed as typed, brackets and all
    (folder / "output_u_9_i_1_stats.csv").write_text("junk\n")
    again = farm("import", str(folder), "--sweep", "legacy-2", cwd=workdir)
    assert again.returncode == 1
    assert "runs [bold]" in again.stderr and "output_u_9_i_1_stats.csv" in again.stderr


def test_a_stored_markup_name_breaks_no_command(workdir: Path) -> None:
    # Given a store holding a sweep whose name, values, host and error text are markup
    legacy_store(workdir)
    # When the sweeps are listed
    sweeps = farm("sweeps", cwd=workdir)
    # Then the list prints, with the name as stored
    assert sweeps.returncode == 0, sweeps.stderr
    assert NAME in sweeps.stdout
    # When its status is shown
    status = farm("status", NAME, cwd=workdir)
    # Then the failed cell's error, parameter values and host are printed literally
    assert status.returncode == 0, status.stderr
    assert MESSAGE in status.stdout and MARKUP in status.stdout and EMOJI in status.stdout
    assert "h[i]" in status.stdout and NAME in status.stdout
    # And its results too
    results = farm("results", NAME, cwd=workdir)
    assert results.returncode == 0, results.stderr
    assert MARKUP in results.stdout and NAME in results.stdout


def test_error_text_holding_markup_is_printed_literally(workdir: Path) -> None:
    # Given an empty store
    legacy_store(workdir)
    # When a sweep that does not exist is asked for by a markup name
    result = farm("status", "[yellow]nope[/]", cwd=workdir)
    # Then the one-line error quotes the name as typed, and the names it lists as stored
    assert result.returncode == 2
    assert "no sweep named '[yellow]nope[/]'" in result.stderr
    assert NAME in result.stderr
