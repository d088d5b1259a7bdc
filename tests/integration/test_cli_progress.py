"""`farm run` shows its progress: a live bar in a terminal, a line per cell when piped; failures as they happen."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from farm.plan import expand
from farm.spec import parse_sweep
from farm.store.repository import Store
from tests.conftest import FARM, ROOT, stray_processes

pytestmark = pytest.mark.integration

# The sleepy server, except that with `fail: 1` its only service exits at once (the group fails at provision).
STACK = f"""
name: flaky
locustfile: {ROOT / "locustfiles" / "sleepy.py"}
health: /healthz
metrics: /metrics
reset: /admin/reset
parameters:
  fail: {{type: int, default: 0, description: "1: the service exits at start"}}
local:
  entry: app
  services:
    - name: app
      instance: true
      command: [sh, -c, 'if [ "{{{{ params.fail }}}}" = 1 ]; then echo broken; exit 3; fi;
                exec "$0" "$1" --port "$2" --delay-ms 1', "{{{{ python }}}}",
                "{ROOT / "stacks" / "sleepy" / "app" / "sleepy.py"}", "{{{{ port }}}}"]
"""
SWEEP = """
name: mixed
stack: ./flaky
matrix:
  fail: [1, 0]
  users: [1, 2]
load: {spawn_rate: 100, duration: 1s, warmup: 0.1s}
"""


def a_sweep_with_a_failing_group(folder: Path) -> Path:
    (folder / "flaky").mkdir()
    (folder / "flaky" / "stack.yaml").write_text(STACK)
    path = folder / "mixed.yaml"
    path.write_text(SWEEP)
    return path


def read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    """What a process printed on stdout until ``text`` appeared in it (read from the pipe itself, not through the
    text wrapper's buffer); fails if it exits or the time is up first."""
    assert proc.stdout is not None
    printed, deadline = b"", time.monotonic() + timeout
    while text not in printed.decode(errors="replace"):
        assert time.monotonic() < deadline and proc.poll() is None, f"{text!r} was never printed: {printed!r}"
        if select.select([proc.stdout], [], [], 1.0)[0]:
            printed += os.read(proc.stdout.fileno(), 65536)
    return printed.decode(errors="replace")


def run_in_a_terminal(args: list[str], cwd: Path, timeout: float = 120) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr; its exit code and everything it wrote."""
    main, child = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=child, stderr=child,
                            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}, start_new_session=True)
    os.close(child)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([main], [], [], 1.0)[0]:  # never block past the deadline
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


@dataclass(frozen=True)
class Runs:
    """The same sweep run twice at once, each in its own folder: piped, and in a pseudo-terminal."""

    piped_folder: Path
    piped: subprocess.CompletedProcess[str]
    terminal_folder: Path
    terminal_code: int
    screen: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Both runs side by side (they wait on the stack, not on the CPU): the piped one in the background."""
    piped_folder, terminal_folder = tmp_path_factory.mktemp("piped"), tmp_path_factory.mktemp("terminal")
    env = {k: v for k, v in os.environ.items() if k != "FARM_DATABASE_URL"}
    sweep = a_sweep_with_a_failing_group(piped_folder)
    piped = subprocess.Popen([*FARM, "run", str(sweep)], cwd=piped_folder, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        code, screen = run_in_a_terminal([*FARM, "run", str(a_sweep_with_a_failing_group(terminal_folder))],
                                         cwd=terminal_folder)
        out, err = piped.communicate(timeout=180)
    finally:
        if piped.poll() is None:
            piped.kill()
            piped.wait()
    return Runs(piped_folder, subprocess.CompletedProcess(piped.args, piped.returncode, out, err),
                terminal_folder, code, screen)


def test_piped_a_line_per_cell_with_every_varying_parameter_and_each_failure(runs: Runs) -> None:
    # Given a sweep whose group `fail=1` cannot start and whose group `fail=0` runs
    # When it runs with its output piped
    workdir, result = runs.piped_folder, runs.piped
    # Then it exits 1, and each ended cell has its line, named by every parameter that varies
    assert result.returncode == 1, result.stderr + result.stdout
    # And before anything runs it says which stack folder and which locustfile run
    assert f"stack: {(workdir / 'flaky').resolve()} (a local folder)" in result.stdout
    assert f"locustfile: {ROOT / 'locustfiles' / 'sleepy.py'}" in result.stdout
    ended = re.findall(r"^(\d)/4 (done|failed): (fail=\d, users=\d) · running: .* · ETA \S+$", result.stdout, re.M)
    assert sorted(label for _n, _status, label in ended) == ["fail=0, users=1", "fail=0, users=2",
                                                             "fail=1, users=1", "fail=1, users=2"]
    assert {status for _n, status, label in ended if label.startswith("fail=1")} == {"failed"}
    assert {status for _n, status, label in ended if label.startswith("fail=0")} == {"done"}
    assert sorted(int(n) for n, _status, _label in ended) == [1, 2, 3, 4]
    # And each failure has a line with its stage, category and message, right after the cell's line
    failures = re.findall(r"^failed \w+ \((fail=1, users=\d)\): \w+/\w+: .*exited with code 3.*$", result.stdout,
                          re.M)
    assert sorted(failures) == ["fail=1, users=1", "fail=1, users=2"]
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\d/4 failed: ", line):
            assert lines[i + 1].startswith("failed ")
    assert stray_processes(str(workdir)) == []


def test_in_a_terminal_a_live_bar_with_failures_printed_above_it(runs: Runs) -> None:
    # Given the same sweep; When it runs in a terminal
    workdir, code, screen = runs.terminal_folder, runs.terminal_code, runs.screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    # Then it exits 1 having drawn a bar with done/total, elapsed time and ETA, not a line per cell
    assert code == 1, plain
    assert re.search(r"━+ 4/4 cells · \d+:\d\d:\d\d · ETA ", plain), plain
    assert re.search(r"━+ [0-3]/4 cells · ", plain), "the bar was never drawn before the end"
    assert not re.search(r"^\d/4 (done|failed): ", plain, re.M)
    # And the running cell is named on the bar by every varying parameter
    assert re.search(r"running: fail=0, users=\d", plain), plain
    # And each failure was printed on its own line, while the bar still had cells to go
    failures = [m.start() for m in re.finditer(r"failed \w+ \(fail=1, users=\d\): \w+/\w+: .*exited with code 3",
                                               plain)]
    assert len(failures) == 2, plain
    last_bar = plain.rindex("4/4 cells")
    assert all(start < last_bar for start in failures)
    assert re.search(r"━+ [0-3]/4 cells · ", plain[failures[0]:]), "no bar was drawn after the first failure"
    assert stray_processes(str(workdir)) == []


def test_status_watch_prints_a_cell_that_fails_while_it_watches(workdir: Path) -> None:
    # Given a sweep whose cells wait
    store = Store(f"sqlite:///{workdir / 'farm.db'}")
    store.migrate()
    loaded = parse_sweep("name: grid\nstack: sleepy\nmatrix: {users: [1, 2], delay_ms: [5, 10]}\n", source="s.yaml",
                         base=workdir)
    cells = expand(loaded.spec, loaded.manifest).cells
    store.create_or_resume(loaded, expand(loaded.spec, loaded.manifest))
    # And `farm status --watch` following it, in its refresh loop (rich's Live has started its refresh thread, which
    # happens after the watch took its first look at the ended cells)
    proc = subprocess.Popen([*FARM, "status", "grid", "--watch"], cwd=workdir, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    params = cells[0].params
    line = (f"failed {cells[0].id} (users={params['users']}, delay_ms={params['delay_ms']}): "
            "reset/internal: ValueError: not JSON")
    try:
        watcher = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        while watcher.num_threads() < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the watch never started"
            time.sleep(0.1)
        # When a cell fails, and once the watch has printed it, the others end
        store.record_failure([cells[0].id], "reset", "internal", "ValueError: not JSON")
        printed = read_until(proc, line, timeout=60)
        store.record_failure([c.id for c in cells[1:]], "queued", "cancel", "cancelled", status="cancelled")
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = printed + rest
    # Then the failure was printed as it happened (before the final table), once, with its varying parameters
    assert proc.returncode == 0, err
    assert out.count(line) == 1, out
    assert out.index(line) < out.index("grid: "), out
