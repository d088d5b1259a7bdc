"""A capacity search's probes in the store: added once however often the step is decided, reasons kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from farm.plan import Cell, Group, Plan, expand
from farm.search import Probe, probe_groups
from farm.spec import LoadedSweep, parse_sweep
from farm.stacks.driver import StackMetrics
from farm.store.probes import add_probe_groups, mark_start
from farm.store.repository import Store
from tests.conftest import ROOT
from tests.unit.test_store import result

SWEEP = ("name: s\nstack: shop\nmatrix: {architecture: [monolith, microservices], users: [1, 2]}\n"
         "load: {spawn_rate: 10, warmup: 1s, duration: 2s}\nrepetitions: 2\nslo: {p95_ms: 50}\n"
         "search: {max_cost: 12}\n")


def first_step_run(store: Store, text: str, source: Path | None = None) -> tuple[LoadedSweep, Plan]:
    """A search sweep stored from ``text`` (submitted from ``source``), its first step's cells all run."""
    loaded = parse_sweep(text, source=str(source or "s.yaml"), base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    mark_start(store, "s", {"step": 0, "why": "start"})
    for cell in plan.cells:
        store.mark_running(cell.id, {"name": "h"})
        store.record_result(cell.id, result(10), StackMetrics(None, None, []))
    return loaded, plan


def test_a_step_added_twice_is_stored_once_and_reopens_a_settled_sweep(store: Store) -> None:
    # Given a search sweep whose first cells have all run (so it settled as done)
    loaded, plan = first_step_run(store, SWEEP)
    assert store.settle("s") == "done"
    # When the worker and the watcher both add the same next step
    probe = Probe({**plan.groups[0].config, "instances": 2}, 2, {"step": 1, "why": "p95 over 50 ms"})
    groups, why = probe_groups(loaded.spec, [probe])
    first = add_probe_groups(store, "s", groups, why)
    second = add_probe_groups(store, "s", groups, why)
    # Then it is stored once (a group per repetition), pending, and the sweep runs again
    assert len(first) == 2 and second == []
    assert store.sweep("s").counts == {"done": 8, "pending": 2}
    assert store.sweep_status("s") == "running"
    # And every cell keeps why it was measured, also once its result is recorded
    new = [c for c in store.cells("s") if c.status == "pending"]
    store.mark_running(new[0].id, {"name": "h"})
    store.record_result(new[0].id, result(10), StackMetrics(None, None, []))
    reasons = {c.id: c.probe for c in store.cells("s")}
    assert reasons[new[0].id] == {"step": 1, "why": "p95 over 50 ms"}
    assert all(reasons[c.id] == {"step": 0, "why": "start"} for c in plan.cells)


def test_an_existing_group_is_not_added_again(store: Store) -> None:
    loaded = parse_sweep(SWEEP, source="s.yaml", base=ROOT)
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    cell = plan.cells[0]
    again = Group(cell.group_id, plan.groups[0].config, (Cell(cell.id, cell.group_id, cell.params, 1, 0),))
    assert add_probe_groups(store, "s", [again], {}) == []


class SentTasks:
    """A Celery app as far as dispatch uses one: it records the tasks sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, kwargs: dict[str, Any], queue: str) -> None:
        self.sent.append({"name": name, "queue": queue, **kwargs})


def test_resume_takes_the_next_step_of_a_search_cancelled_between_two_steps(store: Store, tmp_path: Path) -> None:
    from scheduler.control import resume

    # Given a search sweep whose first cells all ran, none within its 1 ms SLO, cancelled before its next step
    source = tmp_path / "s.yaml"
    source.write_text(SWEEP.replace("p95_ms: 50", "p95_ms: 1"))
    first_step_run(store, source.read_text(), source)
    store.cancel("s")
    assert store.sweep_status("s") == "cancelled" and store.sweep("s").counts == {"done": 8}  # nothing to rerun
    # When it is resumed
    app = SentTasks()
    tasks, stepped = resume(store, app, "s")  # type: ignore[arg-type]  # dispatch needs only send_task
    # Then each trajectory's next probes are added and sent: one more replica, for each architecture and load
    assert tasks == 0 and len(stepped) == 4 and all(o.probe is not None for o in stepped)
    assert store.sweep("s").counts == {"done": 8, "pending": 8} and app.sent
    assert {c.probe["step"] for c in store.cells("s") if c.status == "pending"} == {1}
