"""`farm sweeps` and `farm status NAME` answered by the fast read path print what the full commands print."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from farm.commands.fastpath import answer
from farm.plan import expand
from farm.spec import parse_sweep
from farm.store.repository import Store
from tests.conftest import ROOT, farm

pytestmark = pytest.mark.integration

GRID = "name: grid\nstack: sleepy\nmatrix: {users: [1, 2, 3], delay_ms: [5, 10]}\nload: {duration: 1s}\n"
OTHER = "name: other\nstack: sleepy\nmatrix: {users: [4]}\nload: {duration: 1s}\n"


def a_store_with_work_under_way(folder: Path) -> str:
    """A SQLite store with two sweeps; one has cells running on two hosts and two failed cells."""
    url = f"sqlite:///{folder / 'farm.db'}"
    store = Store(url)
    store.migrate()
    for text in (GRID, OTHER):
        loaded = parse_sweep(text, source="sweep.yaml", base=folder)
        plan = expand(loaded.spec, loaded.manifest)
        store.create_or_resume(loaded, plan)
        if loaded.spec.name == "grid":
            cells = plan.cells
    store.mark_running(cells[0].id, {"name": "host-a"})
    store.mark_running(cells[1].id, {"name": "host-b"})
    store.mark_running(cells[2].id, {"name": "host-a"})
    store.record_failure([cells[2].id], "reset", "internal", "JSONDecodeError: Expecting value: line 1 column 1")
    store.record_failure([cells[3].id], "provision", "provision", "app#0 exited with code 3")
    return url


@pytest.mark.parametrize("args", [("sweeps",), ("status", "grid"), ("status", "other")])
def test_the_fast_path_prints_what_the_full_path_prints(workdir: Path, args: tuple[str, ...]) -> None:
    # Given a store with work under way
    a_store_with_work_under_way(workdir)
    # When a read command runs on the fast path, and on the full path (--debug is not a form the fast path takes)
    fast = farm(*args, cwd=workdir)
    full = farm("--debug", *args, cwd=workdir)
    # Then both print the same thing, byte for byte
    assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
    assert fast.stdout == full.stdout
    assert fast.stdout.strip()
    if args == ("status", "grid"):
        # And that is the progress by host, the running cells named by the varying parameters, and the failures
        assert "grid: pending · 2/6 cells" in fast.stdout
        assert "host-a" in fast.stdout and "host-b" in fast.stdout
        assert "users=1, delay_ms=5" in fast.stdout and "users=1, delay_ms=10" in fast.stdout
        assert "reset/internal: JSONDecodeError: Expecting value: line 1 column 1" in fast.stdout
        assert "provision/provision: app#0 exited with code 3" in fast.stdout


def test_the_fast_path_takes_the_db_option_and_the_environment(workdir: Path, tmp_path_factory: pytest.TempPathFactory,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # Given a store in another folder than the working one
    url = a_store_with_work_under_way(tmp_path_factory.mktemp("elsewhere"))
    # When it is named by --db, by --db=, or by FARM_DATABASE_URL
    for argv, environ in ((["sweeps", "--db", url], {}), ([f"--db={url}", "status", "grid"], {}),
                          (["status", "grid", f"--db={url}"], {}), (["status", "grid"], {"FARM_DATABASE_URL": url})):
        answered = answer(argv, environ)
        printed = capsys.readouterr().out
        # Then the fast path answers the plain forms and leaves the rest to the full path
        if argv[0].startswith("--"):
            assert not answered and printed == ""
        else:
            assert answered, argv
            assert "grid" in printed


def test_the_fast_path_leaves_what_it_cannot_answer_exactly_to_the_full_path(
        workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a store with work under way, and a copy of it at an older schema
    url = a_store_with_work_under_way(workdir)
    old = workdir / "old.db"
    with sqlite3.connect(workdir / "farm.db") as source, sqlite3.connect(old) as copy:
        source.backup(copy)  # the store is in WAL mode: a file copy could miss recent writes
        copy.execute("UPDATE alembic_version SET version_num = '0000'")
    # When the fast path is asked what it cannot answer exactly
    refused = [
        ["status", "grid", "--watch"], ["status", "nope"], ["status"], ["status", "grid", "extra"],
        ["sweeps", "--db", "postgresql+psycopg://farm@127.0.0.1:9/farm"], ["sweeps", "--db", "sqlite://"],
        ["sweeps", "--db", f"sqlite:///{old}"], ["sweeps", "--db", f"sqlite:///{workdir / 'missing.db'}"],
        ["results", "grid"], ["sweeps", "--db"],
    ]
    for argv in refused:
        # Then it declines without printing anything
        assert not answer(argv, {"FARM_DATABASE_URL": url}), argv
        assert capsys.readouterr().out == ""
    # And a name written in another case is left to the settings object, which reads it too
    assert not answer(["sweeps"], {"farm_database_url": url, "FARM_DATABASE_URL": url})
    # And the full path still answers an unknown sweep with its one-line error
    missing = farm("status", "nope", cwd=workdir)
    assert missing.returncode == 2 and "no sweep named 'nope'" in missing.stderr


def test_the_fast_path_imports_neither_typer_nor_sqlalchemy_nor_pydantic(workdir: Path) -> None:
    # Given a store
    a_store_with_work_under_way(workdir)
    # When a fresh interpreter answers `farm status grid` through the entry point's fast path
    probe = ("import sys\nfrom farm.commands.fastpath import answer\nassert answer(['status', 'grid'])\n"
             "heavy = {'typer', 'sqlalchemy', 'pydantic', 'celery', 'yaml'} & set(sys.modules)\n"
             "print('heavy:', sorted(heavy))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    # Then it answers without importing the heavy libraries
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_the_fast_path_agrees_with_the_settings_default_and_the_schema_head() -> None:
    # Given the settings' default store and the store's newest migration
    from farm.commands.fastpath import DEFAULT_DATABASE_URL
    from farm.readonly import head_revision
    from farm.settings import Settings
    from farm.store.repository import HEAD

    # Then the fast path reads the same default store, and knows the same newest schema
    assert Settings.model_fields["database_url"].default == DEFAULT_DATABASE_URL
    assert head_revision() == HEAD
