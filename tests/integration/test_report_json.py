"""`farm report NAME --format json`: the verdicts of a stored sweep, machine-readable, in the CLI's own words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import farm
from tests.integration.test_import_and_report import synthetic_store

pytestmark = pytest.mark.integration


def test_report_json_carries_the_verdicts_the_terminal_prints(workdir: Path) -> None:
    # Given a stored sweep of three repetitions whose cache none, 1 instance comparison crosses at 20 users
    synthetic_store(workdir / "farm.db")
    # When its report is asked for as JSON, and its results in the terminal
    result = farm("report", "synthetic", "--format", "json", cwd=workdir)
    terminal = farm("results", "synthetic", cwd=workdir)
    # Then stdout is one JSON document with a verdict per comparison
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unit"] == "users" and report["interval"]["resamples"] == 1000
    comparisons = {(c["cache"], c["instances"]): c for c in report["comparisons"]}
    assert len(comparisons) == 6
    none = comparisons[("none", 1)]
    assert none["verdict"] == "crossover" and none["repetitions"] == 3 and none["indicative"] is False
    [crossing] = none["crossovers"]
    assert crossing["low"] <= 20 <= crossing["high"]
    assert [p["load"] for p in none["points"]] == [5, 10, 15, 25, 30, 40]
    assert {p["classification"] for p in none["points"]} <= {"lower", "higher", "inconclusive"}
    assert 0 <= none["share_no_crossing"] <= 1 and 0 <= none["share_multiple"] <= 1
    # And the terminal says each comparison's answer in the same words
    assert terminal.returncode == 0, terminal.stderr
    flat = " ".join(terminal.stdout.split())
    for c in report["comparisons"]:
        assert " ".join(c["description"].split()) in flat
    # And the same sweep reported twice gives the same answer (the bootstrap is seeded)
    assert json.loads(farm("report", "synthetic", "--format", "json", cwd=workdir).stdout) == report


def test_report_refuses_an_unknown_format(workdir: Path) -> None:
    synthetic_store(workdir / "farm.db")
    result = farm("report", "synthetic", "--format", "yaml", cwd=workdir)
    assert result.returncode == 2 and "use html, md or json" in result.stderr
