"""The calibrated test stack's latency model: where its architectures cross, and where they are the same."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from locust.stats import bucket_response_time

from tests.conftest import ROOT
from tests.integration.test_calibration import CROSSING_USERS


def _app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibrated_app", ROOT / "tests" / "stacks" / "calibrated" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_crossing_model_crosses_where_the_calibration_test_expects_it() -> None:
    # Given the calibrated stack's model
    app = _app()
    # When its latencies are evaluated around the crossing the integration test asserts
    def diff(users: float) -> float:
        return app.latency_ms("crossing", "microservices", users) - app.latency_ms("crossing", "monolith", users)
    # Then microservices are slower below it, equal at it and faster above it
    assert diff(CROSSING_USERS) == 0
    assert diff(CROSSING_USERS - 1) > 0 > diff(CROSSING_USERS + 1)
    # And at the test's loads the difference is several of Locust's buckets wide
    assert [diff(u) for u in (2, 6, 14)] == [120, 60, -60]


def test_the_identical_model_is_one_server_and_its_values_sit_below_a_bucket_edge() -> None:
    app = _app()
    for users in range(1, 20):
        latency = app.latency_ms("identical", "monolith", users)
        assert latency == app.latency_ms("identical", "microservices", users)
        # 7 ms of overshoot and jitter still land in the model value's own bucket (above 100 ms: nearest 10)
        if latency >= 100:
            assert bucket_response_time(latency) == bucket_response_time(latency + 7)
