"""`farm run` end to end with real Locust, real nginx and the real shop: store, resume, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import FARM, farm, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]

TINY = """
name: tiny
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [local]
  users: [2, 4]
load: {spawn_rate: 10, duration: 2s, warmup: 1s}
"""


def write(tmp: Path, text: str = TINY, name: str = "sweep.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def started_at(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, started_at FROM cells").fetchall())


def test_a_tiny_sweep_runs_end_to_end_a_rerun_runs_no_new_cell_and_another_spec_is_refused(workdir: Path) -> None:
    sweep = write(workdir)
    # When the sweep runs
    first = farm("run", str(sweep), cwd=workdir)
    # Then every cell is done, a summary and the report's path are printed
    assert first.returncode == 0, first.stderr + first.stdout
    assert "4 done" in first.stdout and "reports/tiny.html" in first.stdout
    # And, piped, a line per ended cell names it by the parameters that vary (not cache: it has one value)
    ended = re.findall(r"^[1-4]/4 done: (architecture=\w+, users=[24]) · running: ", first.stdout, re.M)
    assert sorted(ended) == ["architecture=microservices, users=2", "architecture=microservices, users=4",
                             "architecture=monolith, users=2", "architecture=monolith, users=4"], first.stdout
    assert (workdir / "reports" / "tiny.html").read_text().count("<svg") >= 1
    # And the JSON results follow the contract
    cells = json.loads(farm("results", "tiny", "--format", "json", cwd=workdir).stdout)
    assert len(cells) == 4
    for cell in cells:
        assert cell["status"] == "done" and cell["host"]
        assert {"users", "instances", "architecture", "cache", "cache_size"} <= set(cell["params"])
        assert cell["requests"] > 0 and cell["rps"] > 0 and cell["failures"] == 0
        assert 0 < cell["p50_ms"] <= cell["p95_ms"] <= cell["p99_ms"]
        assert cell["cache_hit_ratio"] is not None and 0 <= cell["cache_hit_ratio"] <= 1
        assert cell["generator_cpu_pct"] is not None
    # And Locust's own CSV and HTML report are kept per cell
    artefacts = workdir / "farm-artefacts" / "tiny" / cells[0]["id"]
    assert (artefacts / "locust_stats.csv").is_file() and (artefacts / "locust.html").is_file()
    # When the same sweep runs again into the same database
    before = started_at(workdir / "farm.db")
    second = farm("run", str(sweep), cwd=workdir)
    # Then no cell runs again
    assert second.returncode == 0, second.stderr
    assert "resuming: 0 to run" in second.stdout
    assert started_at(workdir / "farm.db") == before
    assert stray_processes(str(workdir)) == []
    # When a sweep of the same name but another spec runs into that database
    changed = farm("run", str(write(workdir, TINY.replace("users: [2, 4]", "users: [3]"))), cwd=workdir)
    # Then it is refused with one line, exit 2, and nothing runs
    assert changed.returncode == 2
    assert "already exists with a different spec" in changed.stderr
    assert "Traceback" not in changed.stderr
    assert started_at(workdir / "farm.db") == before


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("cache: [local]", "cache: [redis]", "matrix.cache[0]: 'redis' is not allowed"),
    ("users: [2, 4]", "users: []", "'users' is an empty list"),
    ("stack: shop", "stack: nowhere", "stack 'nowhere' not found"),
    ("duration: 2s", "duration: soon", "load.duration: 'soon' is not a duration"),
])
def test_a_bad_sweep_is_one_line_exit_2_and_writes_nothing(workdir: Path, old: str, new: str, needle: str) -> None:
    result = farm("run", str(write(workdir, TINY.replace(old, new))), cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "sweep.yaml" in lines[0]
    assert not (workdir / "farm.db").exists()


def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def test_ctrl_c_mid_sweep_leaves_no_process_and_a_rerun_resumes(workdir: Path) -> None:
    sweep = write(workdir, TINY.replace("duration: 2s", "duration: 3s"))
    proc = subprocess.Popen([*FARM, "run", str(sweep)], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # Given a sweep whose first cell is under load
        wait_for(lambda: any("locust" in c for c in stray_processes(str(workdir))), 60)
        time.sleep(1.0)
        # When the user presses Ctrl-C
        os.killpg(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Then farm exits 130 with a hint, and nothing of the stack or Locust survives
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert stray_processes(str(workdir)) == []
    with sqlite3.connect(workdir / "farm.db") as conn:
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM cells GROUP BY status").fetchall())
        sweep_status = conn.execute("SELECT status FROM sweeps").fetchone()[0]
    assert statuses.get("done", 0) < 4 and statuses.get("running", 0) == 0
    assert sweep_status == "interrupted"
    # When the same command runs again, it finishes the rest
    again = farm("run", str(sweep), cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert f"resuming: {4 - statuses.get('done', 0)} to run" in again.stdout
    with sqlite3.connect(workdir / "farm.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM measurements WHERE name = 'Aggregated'").fetchone()[0] == 4


BROKEN_STACK = ("name: broken\nlocustfile: ../../locustfiles/shop.py\nlocal:\n  entry: web\n  services:\n"
                "    - name: web\n      command: [sh, -c, 'echo starting; exit 3']\n")
ALONE = {  # sweeps whose runs share nothing: they run side by side, each in its own folder
    "broken": "name: b\nstack: {folder}/broken\nmatrix: {{users: [1, 2]}}\nload: {{duration: 1s}}\n",
    "saturated": "name: sat\nstack: shop\nmatrix: {{users: [2, 50, 80]}}\n"
                 "load: {{spawn_rate: 80, duration: 2s, warmup: 1s}}\nstop_when: {{p95_ms: 0.5}}\n",
    "processes": "name: procs\nstack: shop\nmatrix: {{users: [8]}}\nload: {{duration: 3s, warmup: 2s, processes: 2}}\n",
}


@pytest.fixture(scope="module")
def alone(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """`farm run` of each ALONE sweep, all started at once (they wait on the stack and Locust, not on the CPU):
    its folder and its outcome, by key."""
    env = {k: v for k, v in os.environ.items() if k != "FARM_DATABASE_URL"}
    folders, runs = {}, {}
    try:
        for key, text in ALONE.items():
            folder = folders[key] = tmp_path_factory.mktemp(key)
            if key == "broken":  # a stack whose only service exits at once
                (folder / "broken").mkdir()
                (folder / "broken" / "stack.yaml").write_text(BROKEN_STACK)
            sweep = write(folder, text.format(folder=folder))
            runs[key] = subprocess.Popen([*FARM, "run", str(sweep)], cwd=folder, env=env, text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        outcomes = {}
        for key, run in runs.items():
            out, err = run.communicate(timeout=300)
            outcomes[key] = (folders[key], subprocess.CompletedProcess(run.args, run.returncode, out, err))
        return outcomes
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()


def test_a_stack_that_cannot_start_fails_its_cells_with_the_stage_and_exit_1(
        alone: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]) -> None:
    workdir, result = alone["broken"]
    assert result.returncode == 1
    cells = json.loads(farm("results", "b", "-f", "json", cwd=workdir).stdout)
    assert [c["status"] for c in cells] == ["failed", "failed"]
    assert cells[0]["error"]["stage"] == "provision"
    assert "exited with code 3" in cells[0]["error"]["message"]
    assert stray_processes(str(workdir)) == []


def test_stop_when_skips_the_higher_loads_of_a_saturated_group(
        alone: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]) -> None:
    workdir, result = alone["saturated"]
    assert result.returncode == 0, result.stderr
    cells = json.loads(farm("results", "sat", "-f", "json", cwd=workdir).stdout)
    assert [(c["params"]["users"], c["status"]) for c in cells] == [(2, "done"), (50, "skipped"), (80, "skipped")]
    assert "saturated" in cells[1]["error"]["message"]


def test_several_locust_processes_share_one_cells_load(
        alone: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]) -> None:
    workdir, result = alone["processes"]
    assert result.returncode == 0, result.stderr
    [cell] = json.loads(farm("results", "procs", "-f", "json", cwd=workdir).stdout)
    assert cell["status"] == "done" and cell["requests"] > 0 and cell["generator_cpu_pct"] is not None
    log = (workdir / "farm-artefacts" / "procs" / cell["id"] / "locust.out").read_text()
    assert unexpected_tracebacks(log) == []


# Locust 2.47 closes its CSV files in shutdown() (locust PR #3486) while the stats-history greenlet may still be
# writing: that greenlet dies with this error after the statistics were written (farm.load.runner keeps them). The
# one traceback a multi-process run may print; any other is a defect.
LOCUST_CSV_RACE = "ValueError: I/O operation on closed file"


def unexpected_tracebacks(log: str) -> list[str]:
    """Each traceback in a Locust log, as its last line, except Locust's own CSV-writer shutdown race."""
    found = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            block = [next_line for next_line in lines[i + 1:]]
            end = next((j for j, text in enumerate(block) if text and not text.startswith(" ")), len(block) - 1)
            frames, last = "\n".join(block[:end]), block[end] if block else ""
            if not (last.startswith(LOCUST_CSV_RACE) and "locust/stats.py" in frames):
                found.append(last)
    return found
