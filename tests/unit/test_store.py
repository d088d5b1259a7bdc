"""The store on SQLite: create, resume, refuse a changed spec, and write results idempotently."""

from __future__ import annotations

import pytest

from farm.errors import SweepConflictError
from farm.load.stats import EndpointStats, LoadResult
from farm.plan import expand
from farm.spec import parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.repository import Store
from tests.conftest import ROOT

SWEEP = "name: s\nstack: shop\nmatrix: {architecture: [monolith, microservices], users: [1, 2]}\n"


def stats(name: str, requests: int) -> EndpointStats:
    return EndpointStats("GET", name, requests, 1, requests / 10, 5.0, 4.0, 8.0, 9.0, 12.0, 20.0, {4: requests})


def result(requests: int) -> LoadResult:
    return LoadResult((stats("/a", requests),), stats("Aggregated", requests), 10.0, 2.0, 35.0, False, None)


def loaded(text: str = SWEEP):
    sweep = parse_sweep(text, source="s.yaml", base=ROOT)
    return sweep, expand(sweep.spec, sweep.manifest)


def test_a_new_sweep_stores_every_cell_pending(store: Store) -> None:
    sweep, plan = loaded()
    info = store.create_or_resume(sweep, plan)
    assert info.new and info.counts == {"pending": 4}
    assert len(store.unfinished_groups(info.id)) == 2


def test_the_same_spec_resumes_and_a_changed_one_is_refused(store: Store) -> None:
    sweep, plan = loaded()
    first = store.create_or_resume(sweep, plan)
    again = store.create_or_resume(sweep, plan)
    assert not again.new and again.id == first.id
    changed, changed_plan = loaded(SWEEP.replace("[1, 2]", "[1, 3]"))
    with pytest.raises(SweepConflictError, match="already exists with a different spec"):
        store.create_or_resume(changed, changed_plan)


def test_recording_a_cell_twice_keeps_one_result(store: Store) -> None:
    sweep, plan = loaded()
    info = store.create_or_resume(sweep, plan)
    cell = plan.cells[0]
    store.mark_running(cell.id, {"name": "h1"})
    store.record_result(cell.id, result(100), StackMetrics(30, 70, []))
    store.record_result(cell.id, result(120), StackMetrics(40, 60, []))
    row = next(c for c in store.cells("s") if c.id == cell.id)
    assert row.status == "done" and row.host == "h1" and row.cache_hits == 40
    assert sorted((m.name, m.requests) for m in row.measurements) == [("/a", 120), ("Aggregated", 120)]
    assert store.sweep("s").counts == {"done": 1, "pending": 3}
    _name, _config, todo = store.group_work(cell.group_id)
    assert cell.id not in {c.id for c in todo}
    assert info.id == store.sweep("s").id


def test_a_failure_keeps_stage_category_and_message(store: Store) -> None:
    sweep, plan = loaded()
    store.create_or_resume(sweep, plan)
    store.record_failure([plan.cells[0].id], "provision", "environment", "nginx is not installed")
    row = store.cells("s")[0]
    assert (row.status, row.error_stage, row.error_category) == ("failed", "provision", "environment")


def test_the_store_knows_the_newest_migration() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from farm.store.repository import HEAD, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD
