"""Issue 15 item 5: the capacity search finds the calibrated stack's closed-form cheapest configurations, the switch
point lies in its interval, and where microservices cannot win the answer says the monolith is cheaper.

The calibrated stack's ``model: capacity`` (tests/stacks/calibrated/capacity.py): a replica of capacity c answers
in ~200 ms while at most c requests are in flight on it, ≥ 500 ms above; the SLO is p95 ≤ 350 ms, so the cheapest
configuration at U users runs ceil(U / c) replicas of each service. With the defaults the monolith (app: c 10,
cost 2 a replica) costs 2, 6 at 5, 25 users and microservices (front → hot → cold, c 60/10/60, cost 1 each) 3, 5:
microservices are cheaper from 21 users. With every microservice's capacity 10 and the app's 20 they cost
3·ceil(U/10) against the monolith's 2·ceil(U/20): never less; at 12 users 6 against 2 (one app replica: no
balancing whose momentary imbalance could decide, as it did with two replicas at 15 users).

Each sweep has three repetitions (two stretch the interval ~9×, and a busy machine's noise then decides), with
reprovision: false and 1 s windows, runs through the real ``farm run``, as a user would, in
their own folders; the answers are read from ``farm report NAME --format json`` and ``farm results NAME --format
json``. A cell whose generator's CPU set was ≥ 90% busy on a saturated host never vouches for a configuration
(the stack's set at its limit alone is a result, judged by its latency): on a machine busy with other work the
search rightly finds nothing that meets the SLO, and this test fails saying so.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from farm.analysis.surfaces import BUSY_PCT, WAIT_MS
from tests.conftest import ROOT, farm, stray_processes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STACK = ROOT / "tests" / "stacks" / "calibrated"
sys.path.insert(0, str(STACK))
from capacity import NEVER, SLO_P95_MS, cheapest, switch_users  # noqa: E402  (the closed form, beside its stack)

SWEEP = """name: {name}
stack: {stack}
matrix:
  architecture: [monolith, microservices]
  model: [capacity]
{extra}  users: {users}
load: {{spawn_rate: 100, duration: 1s, warmup: 1s}}
repetitions: 3
reprovision: false
slo: {{p95_ms: {slo:g}}}
search: {{max_cost: {budget}}}
"""
SETTINGS: dict[str, dict[str, Any]] = {
    "switch": {"users": [5, 25], "budget": 9, "params": {}},
    "never": {"users": [12], "budget": 6, "params": {**NEVER, "app_capacity": 20}},
}


def _report(folder: Path, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweep's one cost answer, and its cells."""
    report = farm("report", name, "--format", "json", cwd=folder)
    cells = farm("results", name, "--format", "json", cwd=folder)
    assert report.returncode == 0 and cells.returncode == 0, report.stderr + cells.stderr
    [answer] = json.loads(report.stdout)["cost_benefit"]
    return answer, json.loads(cells.stdout)


def _flags(cells: list[dict[str, Any]]) -> list[str]:
    """The flags that bar a cell from vouching for a configuration (farm.analysis.surfaces.generator_busy's rule):
    a saturated generator, or one that waited for a CPU, a rate short of its offer. A stack CPU set at its limit
    alone is a result."""
    found = {f for c in cells for f in ("rate_saturated", "generator_saturated") if c.get(f)}
    for c in cells:
        own = c.get("generator_set_cpu_pct")
        busy = own >= BUSY_PCT if own is not None else (c.get("host_cpu_pct") or 0.0) >= BUSY_PCT
        waited = c.get("generator_wait_ms")
        if (waited is not None and waited >= WAIT_MS) or (waited is None and c.get("host_saturated") and busy):
            found.add("generator_busy")
    return sorted(found)


def _run(folder: Path, name: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """Run one setting's search sweep through the real ``farm run`` in its own folder; its output, cost answer
    and cells."""
    setting = SETTINGS[name]
    folder.mkdir()
    extra = "".join(f"  {k}: [{v:g}]\n" for k, v in setting["params"].items())
    (folder / "sweep.yaml").write_text(SWEEP.format(name=name, stack=STACK, extra=extra, users=setting["users"],
                                                    slo=SLO_P95_MS, budget=setting["budget"]))
    started = time.monotonic()
    run = farm("run", "sweep.yaml", cwd=folder, timeout=600)
    print(f"the {name} search took {time.monotonic() - started:.0f} s")
    assert run.returncode == 0, run.stdout + run.stderr
    answer, cells = _report(folder, name)
    assert not _flags(cells), f"flagged cells cannot vouch for a configuration: {_flags(cells)}"
    return run.stdout, answer, cells


def test_the_search_finds_the_closed_form_and_the_switch_point_lies_in_its_interval(tmp_path: Path) -> None:
    # Given a search sweep of the calibrated stack's defaults at 5 and 25 users
    # When it runs through the real farm, as a user would
    output, answer, cells = _run(tmp_path / "switch", "switch")
    # Then at every load each architecture's cheapest configuration is the closed form's, replicas and cost
    for point in answer["per_load"]:
        for arch in ("monolith", "microservices"):
            replicas, cost = cheapest(arch, point["load"])
            assert point[arch]["cost"] == cost, (arch, point)
            assert point[arch]["replicas"] == replicas, (arch, point)
            assert point[arch]["p95_high"] <= SLO_P95_MS, (arch, point)
    # And the switch point's interval holds the closed form's (21 users), never narrower than its bracket
    assert answer["outcome"] == "switch", answer["description"]
    assert answer["switch"]["low"] <= switch_users() <= answer["switch"]["high"], answer["switch"]
    assert (answer["switch"]["low"], answer["switch"]["high"]) == (5, 25)
    # And every cell says why it was measured: step 0, then one reason per step, naming the service scaled
    assert all(c["probe"] and "why" in c["probe"] for c in cells)
    hot = [c["probe"] for c in cells if c["params"].get("replicas.hot") == 2]
    assert hot and all(p["step"] == 1 and p["scaled"] == "hot" for p in hot), hot
    assert "search step 1:" in output
    # And the search measured one cell per repetition and step: 1 + 3 at each architecture's two loads
    assert len(cells) == 3 * (1 + 3 + 1 + 3), len(cells)
    assert stray_processes(str(tmp_path)) == []


def test_where_microservices_cannot_win_the_monolith_is_cheaper_throughout(tmp_path: Path) -> None:
    # Given a search sweep of the calibrated stack where microservices cannot win, at 12 users
    # When it runs through the real farm
    _output, answer, _cells = _run(tmp_path / "never", "never")
    # Then the monolith meets the SLO for significantly less
    never = SETTINGS["never"]["params"]
    [point] = answer["per_load"]
    assert answer["outcome"] == "monolith cheaper throughout", (answer["description"], point)
    # And microservices' cheapest configuration is the closed form's (6), the monolith's cost interval holds its
    # closed form (2; on a busy machine a noisy repetition can leave one app replica unconfirmed: seen 2–4)
    assert point["microservices"]["cost"] == cheapest("microservices", 12, never)[1], point
    assert point["monolith"]["cost_low"] <= cheapest("monolith", 12, never)[1] <= point["monolith"]["cost"], point
    assert stray_processes(str(tmp_path)) == []


RESUMED = """name: resumed
stack: {stack}
matrix:
  architecture: [monolith, microservices]
  model: [capacity]
  users: [15]
load: {{spawn_rate: 100, duration: 1s, warmup: 1s}}
slo: {{p95_ms: {slo:g}}}
search: {{max_cost: 6}}
"""


def test_a_search_cancelled_mid_way_and_resumed_reaches_the_same_answer(tmp_path: Path) -> None:
    from farm.search import BLOCKED, BUDGET, MEETS
    from farm.store.repository import Store
    from farm.stored import stored_sweep
    from scheduler.search import outcomes
    from tests.integration.conftest import require
    from tests.integration.lab import Host, Redis, Worker

    require("redis-server", "apt-get install redis-server")
    # Given a search submitted to a lab (a Redis broker, a store and one `farm worker`) at 15 users, where each
    # architecture needs one step: app×2 (cost 4) and hot×2 (cost 4), one repetition each (indicative, but short)
    redis = Redis(tmp_path / "redis", []).start()
    env = {"FARM_BROKER_URL": redis.url(), "FARM_DATABASE_URL": f"sqlite:///{tmp_path / 'farm.db'}"}
    worker = Worker(Host("box1", None, "127.0.0.1"), env, tmp_path).start()
    try:
        (tmp_path / "sweep.yaml").write_text(RESUMED.format(stack=STACK, slo=SLO_P95_MS))
        submitted = farm("submit", "sweep.yaml", cwd=tmp_path, env=env)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        # When it is cancelled while its first step-1 probe runs (step 0 of both done or under way)
        deadline = time.monotonic() + 300
        while not any(c["status"] == "running" and (c.get("probe") or {}).get("step") == 1
                      for c in _cells(tmp_path, env)):
            assert time.monotonic() < deadline, (_cells(tmp_path, env), worker.log.read_text()[-3000:])
            time.sleep(1.0)
        cancelled = farm("cancel", "resumed", cwd=tmp_path, env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert any(c["status"] == "cancelled" for c in _cells(tmp_path, env))
        # And then resumed
        resumed = farm("resume", "resumed", cwd=tmp_path, env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        # Then it runs to the search's end: every trajectory meets the SLO or reached its budget
        store = Store(env["FARM_DATABASE_URL"])
        loaded = stored_sweep(store, "resumed")
        deadline = time.monotonic() + 400
        while not (found := outcomes(store, loaded)) or not all(o.state in (MEETS, BUDGET) for o in found):
            assert time.monotonic() < deadline, ([o.text for o in found], worker.log.read_text()[-3000:])
            assert not any(o.state == BLOCKED for o in found), ([o.text for o in found], worker.log.read_text()[-3000:])
            time.sleep(1.0)
    finally:
        worker.stop()
        redis.stop()
    # And it ends where an uninterrupted one does: the closed form's cheapest configuration, one step each (a flagged
    # cell never vouches for a configuration: on a machine busy with other work the search rightly scales on, and
    # this part fails saying so)
    answer, cells = _report(tmp_path, "resumed")
    assert all(c["status"] == "done" for c in cells), [c["status"] for c in cells]
    assert not _flags(cells), f"flagged cells cannot vouch for a configuration: {_flags(cells)}"
    [point] = answer["per_load"]
    for arch in ("monolith", "microservices"):
        replicas, cost = cheapest(arch, 15)
        assert (point[arch]["replicas"], point[arch]["cost"]) == (replicas, cost), (arch, point)
    assert sorted(c["probe"]["step"] for c in cells) == [0, 0, 1, 1], [c["probe"] for c in cells]
    assert stray_processes(str(tmp_path)) == []


def _cells(folder: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    result = farm("results", "resumed", "--format", "json", cwd=folder, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
