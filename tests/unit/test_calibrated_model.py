"""The calibrated test stack's latency model: where its architectures cross, and where they are the same."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from types import ModuleType

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


def locust_buckets(values: list[float]) -> list[int]:
    """Locust's own histogram buckets of ``values``, computed in a subprocess: importing Locust here would
    monkey-patch this test process with gevent (seen: the unit suite then hung at exit beside test_serve's threads)."""
    code = ("import json, sys\nfrom locust.stats import bucket_response_time as b\n"
            "print(json.dumps([b(v) for v in json.loads(sys.argv[1])]))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(values)], capture_output=True, text=True,
                         check=True, timeout=60)
    return [int(v) for v in json.loads(out.stdout)]


def test_the_identical_model_is_one_server_and_its_values_sit_below_a_bucket_edge() -> None:
    app = _app()
    latencies = []
    for users in range(1, 20):
        latency = app.latency_ms("identical", "monolith", users)
        assert latency == app.latency_ms("identical", "microservices", users)
        latencies.append(latency)
    # 7 ms of overshoot and jitter still land in the model value's own bucket (above 100 ms: nearest 10)
    above = [latency for latency in latencies if latency >= 100]
    assert above, latencies
    assert locust_buckets(above) == locust_buckets([latency + 7 for latency in above])


def test_the_capacity_model_s_cheapest_configurations_and_switch_point_in_closed_form() -> None:
    from tests.stacks.calibrated import capacity as model

    # Given the capacity model's defaults: app capacity 10 at cost 2; front and cold 60, hot 10, at cost 1
    # When / Then the cheapest SLO-meeting configuration runs ceil(U / capacity) replicas of each service
    assert model.cheapest("monolith", 5) == ({"app": 1}, 2.0)
    assert model.cheapest("microservices", 5) == ({"front": 1, "hot": 1, "cold": 1}, 3.0)
    assert model.cheapest("monolith", 15) == ({"app": 2}, 4.0)
    assert model.cheapest("microservices", 15) == ({"front": 1, "hot": 2, "cold": 1}, 4.0)
    assert model.cheapest("monolith", 25) == ({"app": 3}, 6.0)
    assert model.cheapest("microservices", 25) == ({"front": 1, "hot": 3, "cold": 1}, 5.0)
    # And the monolith is cheaper at 5 users, they tie at 15, microservices are cheaper at 25
    assert [model.cheaper(u) for u in (5, 15, 25)] == ["monolith", None, "microservices"]
    # And microservices are cheaper from 21 users on (at every load up to 240), and never with capacities of 10
    assert model.switch_users() == 21
    assert model.cheaper(20) is None and model.cheaper(21) == "microservices"
    assert model.switch_users(model.NEVER) is None
    assert all(model.cheaper(u, model.NEVER) == "monolith" for u in range(1, 100))
    # And a configuration meets the SLO exactly when every service holds its share of the users
    assert model.meets("microservices", {"hot": 2}, 15) and not model.meets("microservices", {"hot": 1}, 15)
    assert not model.meets("monolith", {"app": 2}, 25) and model.meets("monolith", {"app": 3}, 25)


def test_the_capacity_model_s_costs_are_the_manifest_s() -> None:
    # Given the calibrated stack's manifest and the model
    from farm.stacks.manifest import load_manifest
    from farm.stacks.scaling import declared_cost
    from tests.stacks.calibrated import capacity as model

    manifest = load_manifest(ROOT / "tests" / "stacks" / "calibrated")
    # When each architecture's cheapest configuration at 25 users is costed by the farm
    for architecture in ("monolith", "microservices"):
        replicas, cost = model.cheapest(architecture, 25)
        params = {**manifest.defaults(), "model": "capacity", "architecture": architecture, "instances": 1,
                  **{f"replicas.{s}": n for s, n in replicas.items()}}
        # Then the farm's declared cost is the model's
        assert declared_cost(manifest, params)[0] == cost
    # And the model's defaults are the manifest's
    assert {k: manifest.defaults()[k] for k in model.DEFAULTS} == model.DEFAULTS
