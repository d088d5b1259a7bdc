"""`farm report --format json` and `farm results` carry the cost answer of a stored sweep with an SLO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import farm
from tests.integration.test_import_and_report import synthetic_store

pytestmark = pytest.mark.integration
OUTCOMES = {"switch", "microservices cheaper throughout", "monolith cheaper throughout", "no significant difference",
            "not enough data"}


def test_the_cost_answer_is_in_the_json_report_and_the_terminal(workdir: Path) -> None:
    # Given a stored sweep of both architectures at 1 and 2 instances, three cache settings, p95 SLO 40 ms
    synthetic_store(workdir / "farm.db")
    # When its report is asked for as JSON, and its results in the terminal
    result = farm("report", "synthetic", "--format", "json", cwd=workdir)
    terminal = farm("results", "synthetic", cwd=workdir)
    # Then the JSON has one cost answer per cache setting, each load with both architectures' cheapest configuration
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)["cost_benefit"]
    assert [a["cache"] for a in answers] == ["local", "none", "shared"]
    for answer in answers:
        assert answer["outcome"] in OUTCOMES and answer["repetitions"] == 3
        assert answer["switch"] is None or answer["switch"]["low"] <= answer["switch"]["at"] <= answer["switch"]["high"]
        assert [p["load"] for p in answer["per_load"]] == [5, 10, 15, 25, 30, 40]
        first = answer["per_load"][0]
        assert first["monolith"]["cost"] == 1 and first["monolith"]["replicas"] == {"instances": 1}
        assert first["microservices"]["p95_ms"] <= 40 and first["classification"] == "inconclusive"
    # And the terminal says each cache setting's answer in one sentence, in the same words
    assert terminal.returncode == 0, terminal.stderr
    flat = " ".join(terminal.stdout.split())
    for answer in answers:
        assert f"costs, cache {answer['cache']}: {' '.join(answer['description'].split())}" in flat
