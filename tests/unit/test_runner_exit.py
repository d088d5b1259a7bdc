"""The Locust runner's reading of how Locust ended, with a stand-in for `python -m locust` (a real process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from farm.errors import LoadError
from farm.load.runner import LoadRequest, LocustRunner

DATA = Path(__file__).parent.parent / "data" / "locust_stats.json"

# Stands in for the interpreter: writes the statistics the plugin would (or not), then exits with a given code.
FAKE = '''#!{python}
import sys, shutil
args = sys.argv
out = args[args.index("--farm-stats-out") + 1]
if {write}:
    shutil.copy({data!r}, out)
print("ValueError: I/O operation on closed file.")
sys.exit({code})
'''


def run_with(tmp_path: Path, *, write: bool, code: int) -> LocustRunner:
    fake = tmp_path / "python"
    fake.write_text(FAKE.format(python=sys.executable, write=write, data=str(DATA), code=code))
    fake.chmod(0o755)
    return LocustRunner(python=str(fake))


def request(tmp_path: Path) -> LoadRequest:
    return LoadRequest(locustfile=tmp_path / "scenario.py", host="http://127.0.0.1:9", users=1, spawn_rate=1.0,
                       duration_s=1.0, warmup_s=1.0, artefacts=tmp_path / "cell")


def test_an_error_after_the_statistics_were_written_keeps_the_measurement(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    # Given a Locust that wrote its statistics, then failed while quitting (exit code 2)
    runner = run_with(tmp_path, write=True, code=2)
    # When the cell's load runs
    result = runner.run(request(tmp_path))
    # Then the measurement is kept, and the late error is logged with Locust's last words
    assert result.total.requests == json.loads(DATA.read_text())["total"]["num_requests"]
    assert "exited with code 2 after writing its statistics" in caplog.text
    assert "I/O operation on closed file" in caplog.text


def test_an_error_before_any_statistics_fails_the_load(tmp_path: Path) -> None:
    # Given a Locust that failed before writing statistics
    runner = run_with(tmp_path, write=False, code=2)
    # Then the cell's load fails with the exit code and Locust's last words
    with pytest.raises(LoadError, match=r"exited with code 2 and no statistics: .*closed file"):
        runner.run(request(tmp_path))
