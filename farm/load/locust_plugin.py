"""Loaded into the Locust subprocess beside the scenario (never imported by farm's own processes).

It resets Locust's statistics when the warm-up ends, so the warm-up is excluded from every figure, and at
exit writes the measured window's full statistics (histograms included) as JSON for the farm to parse.
"""

import json
import time

import gevent
from locust import events
from locust.runners import WorkerRunner

_state: dict[str, float] = {}


@events.init_command_line_parser.add_listener
def _add_arguments(parser, **_kwargs):
    parser.add_argument("--farm-warmup", type=float, default=0.0, help="seconds excluded from statistics")
    parser.add_argument("--farm-stats-out", type=str, default="", help="where to write the final statistics")


def _begin_measuring(environment):
    environment.runner.stats.reset_all()
    environment.runner.exceptions = {}
    _state["measure_start"] = time.time()
    _mark_measuring(environment)


def _mark_measuring(environment):
    # The farm watches for this file to snapshot stack metrics when the measured window opens.
    out = getattr(environment.parsed_options, "farm_stats_out", "")
    if out:
        with open(out + ".measuring", "w") as fh:
            fh.write(str(time.time()))


@events.test_start.add_listener
def _on_test_start(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner):
        return
    _state["test_start"] = time.time()
    warmup = float(environment.parsed_options.farm_warmup or 0.0)
    if warmup > 0:
        gevent.spawn_later(warmup, _begin_measuring, environment)
    else:
        _state["measure_start"] = time.time()
        _mark_measuring(environment)


@events.test_stop.add_listener
def _on_test_stop(environment, **_kwargs):
    _state.setdefault("measure_end", time.time())


@events.quitting.add_listener
def _on_quitting(environment, **_kwargs):
    out = getattr(environment.parsed_options, "farm_stats_out", "")
    if not out or isinstance(environment.runner, WorkerRunner):
        return
    end = _state.get("measure_end", time.time())
    start = _state.get("measure_start")
    stats = environment.runner.stats
    document = {
        "measured_s": (end - start) if start else 0.0,
        "warmup_s": (start - _state["test_start"]) if start and "test_start" in _state else 0.0,
        "warmup_completed": start is not None,
        "stats": [e.serialize() for e in stats.entries.values() if e.num_requests or e.num_failures],
        "total": stats.total.serialize(),
        "errors": [
            {"method": e.method, "name": e.name, "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
    }
    with open(out, "w") as fh:
        json.dump(document, fh, default=str)
