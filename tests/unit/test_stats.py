"""Locust statistics parsed from a real captured run; percentiles from the histogram agree with Locust's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from farm.errors import LoadError
from farm.load.stats import TOTAL, merge_histograms, parse_locust_stats, percentile
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"


def test_a_captured_run_parses_per_endpoint_and_in_total() -> None:
    document = json.loads((DATA / "locust_stats.json").read_text())
    result = parse_locust_stats(document)
    assert result.total.name == TOTAL
    assert result.total.requests == sum(e.requests for e in result.endpoints) > 0
    assert result.total.rps == pytest.approx(result.total.requests / result.measured_s)
    assert {e.name for e in result.endpoints} >= {"/products/[id]", "/catalog"}


LOCUST_PERCENTILES = """
import json, sys
from locust.stats import RequestStats, StatsEntry
doc = json.load(open(sys.argv[1]))
out = {}
for entry in [*doc["stats"], {**doc["total"], "name": "Aggregated", "method": ""}]:
    entry["response_times"] = {int(k): v for k, v in entry["response_times"].items()}  # JSON made keys str
    e = StatsEntry.unserialize(entry, RequestStats())
    out[entry["name"]] = [e.get_response_time_percentile(p) for p in (0.5, 0.9, 0.95, 0.99)]
print(json.dumps(out))
"""


def test_percentiles_match_locusts_own_computation_on_the_same_histogram() -> None:
    # Locust is imported only in a subprocess: it monkey-patches the interpreter with gevent.
    path = DATA / "locust_stats.json"
    result = parse_locust_stats(json.loads(path.read_text()))
    theirs = json.loads(subprocess.run([sys.executable, "-c", LOCUST_PERCENTILES, str(path)], check=True,
                                       capture_output=True, text=True).stdout)
    ours = {e.name: [e.p50_ms, e.p90_ms, e.p95_ms, e.p99_ms] for e in (*result.endpoints, result.total)}
    assert set(ours) == set(theirs)
    for name, values in theirs.items():
        assert ours[name] == pytest.approx(values), name


def test_percentile_of_a_known_histogram() -> None:
    hist = {10: 90, 100: 9, 1000: 1}
    assert percentile(hist, 0.5) == 10
    assert percentile(hist, 0.95) == 100
    assert percentile(hist, 0.999) == 1000
    assert percentile({}, 0.5) is None


def test_merging_keeps_every_sample() -> None:
    merged = merge_histograms([{10: 5, 20: 1}, {"20": 2, 30: 3}])  # type: ignore[list-item]
    assert merged == {10: 5, 20: 3, 30: 3}


def test_a_document_without_stats_is_a_load_error() -> None:
    with pytest.raises(LoadError):
        parse_locust_stats({"measured_s": 10})
