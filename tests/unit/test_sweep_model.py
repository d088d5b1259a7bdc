"""One typed sweep model end to end: a worker rebuilds the spec from its stored dump, not from the YAML text; the
load axis is one `LoadLevel`, decided by the spec and the plan."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from farm.cells import StoredCell
from farm.compare import Comparison
from farm.errors import SpecError
from farm.load_level import RATE, USERS, LoadLevel, load_kind
from farm.plan import expand
from farm.readonly import ReadOnlyStore, connect
from farm.spec import parse_sweep, rebuild_sweep
from farm.stored_spec import stored_spec
from tests.conftest import ROOT
from tests.webstore import land, planned

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SWEEPS = {
    "rate": """name: paced
stack: shop
matrix: {architecture: [monolith, microservices], rate: [50, 100.5]}
load: {spawn_rate: 20, duration: 5s, warmup: {until_stable: true, max: 30s}, pacing: 500ms}
repetitions: 2
reprovision: false
seed: 7
stop_when: {error_ratio: 0.5}
cpus: {generator: "1", stack: "0"}
compare: {architecture: architecture, cache: cache}
""",
    "grid": """name: grid
stack: shop
matrix: {architecture: [monolith, microservices], cache: [none, local], users: [5, 10], replicas.catalog: [1, 2]}
exclude: [{cache: local, users: 10}]
load: {spawn_rate: 10, duration: 2s, warmup: 1s}
slo: {p95_ms: 50}
price: {per_unit_hour: 0.04, currency: EUR}
""",
}


def stored(text: str, base: Path) -> tuple[dict[str, object], str]:
    """What the store keeps of a parsed sweep: its model dump (through JSON, as the column holds it) and text."""
    loaded = parse_sweep(text, source="s.yaml", base=base)
    return json.loads(json.dumps(loaded.spec.model_dump(mode="json"))), text


@pytest.mark.parametrize("text", [*SWEEPS.values(), *(p.read_text() for p in EXAMPLES)],
                         ids=[*SWEEPS, *(p.name for p in EXAMPLES)])
def test_a_rebuilt_sweep_is_the_submitted_one_with_the_same_fingerprint_and_plan(text: str) -> None:
    base = ROOT / "examples"
    submitted = parse_sweep(text, source="s.yaml", base=base)
    dump, _ = stored(text, base)
    rebuilt = rebuild_sweep(dump, text, source="sweep 's'", base=base)
    assert rebuilt.spec == submitted.spec
    assert rebuilt.spec.fingerprint() == submitted.spec.fingerprint()
    assert rebuilt.manifest.name == submitted.manifest.name
    assert expand(rebuilt.spec, rebuilt.manifest) == expand(submitted.spec, submitted.manifest)


def test_a_worker_does_not_read_the_text_again() -> None:
    # Given a stored dump and a text that no longer parses (the worker must not need it)
    dump, _ = stored(SWEEPS["grid"], ROOT)
    # When the sweep is rebuilt, Then the dump alone makes it
    assert rebuild_sweep(dump, "{not: [yaml", source="sweep 'grid'", base=ROOT).spec.name == "grid"
    # And a stack missing on this host is still one clear line
    with pytest.raises(SpecError, match="sweep 'grid': stack: "):
        rebuild_sweep({**dump, "stack": "./no-such-stack"}, "", source="sweep 'grid'", base=ROOT)


def test_the_load_level_is_decided_by_the_spec_and_the_plan_and_read_as_one_value() -> None:
    paced = parse_sweep(SWEEPS["rate"], source="s.yaml", base=ROOT)
    grid = parse_sweep(SWEEPS["grid"], source="s.yaml", base=ROOT)
    assert (paced.spec.load_kind, grid.spec.load_kind) == (RATE, USERS)
    levels = {c.level for c in expand(paced.spec, paced.manifest).cells}
    assert levels == {LoadLevel(RATE, 50.0), LoadLevel(RATE, 100.5)}
    level = LoadLevel(RATE, 100.5)
    assert (str(level), level.offered_rps, level.users, level.open_loop) == ("100.5 req/s offered", 100.5, 0, True)
    users = next(iter(expand(grid.spec, grid.manifest).cells)).level
    assert (str(users), users.offered_rps, users.users, users.unit) == ("5 users", None, 5, "users")
    assert load_kind(None) == load_kind({"users": [1]}) == load_kind({"rate": [1], "users": [1]}) == USERS


def test_the_store_gives_frozen_domain_cells_and_the_sqlite_reader_the_same_ones(tmp_path: Path) -> None:
    # Given a sweep whose cells landed in a SQLite store
    store, cells = planned(tmp_path / "farm.db", "cells")
    for cell in cells[:4]:
        land(store, cell)
    # When the store and the read-only reader give its cells
    full = store.cells("cells")
    with connect(f"sqlite:///{tmp_path / 'farm.db'}") as conn:
        assert conn is not None
        lean = ReadOnlyStore(conn).cells("cells")
    # Then both are frozen values, not rows, and tell the same cells
    assert all(isinstance(c, StoredCell) for c in [*full, *lean])
    with pytest.raises(dataclasses.FrozenInstanceError):
        full[0].status = "done"  # type: ignore[misc]
    assert [(c.id, c.params, c.status, c.level, c.measurements) for c in lean] == \
        [(c.id, c.params, c.status, c.level, c.measurements) for c in full]
    assert [c.level for c in full] == [c.level for c in cells] and full[0].measurements[0].histogram
    # And a group's work is domain cells too
    _name, _config, work = store.group_work(cells[-1].group_id)
    assert work and all(isinstance(c, StoredCell) for c in work)


def test_the_read_side_reads_a_stored_spec_once_into_one_typed_view() -> None:
    # Given the dumps the store keeps: a submitted sweep's and an imported one's
    dump, _ = stored(SWEEPS["rate"], ROOT)
    imported = {"stack": "classic-import", "imported_from": "/x", "params": {"architecture": "monolith"}}
    # When the read side reads them
    paced, old = stored_spec(dump), stored_spec(imported)
    # Then each fact is typed, with the defaults an imported sweep never had
    assert (paced.load, paced.repetitions, paced.targets, paced.search, paced.slo) == (RATE, 2, (), False, None)
    assert paced.matrix is not None and paced.matrix["rate"] == [50, 100.5]
    assert (old.matrix, old.load, old.repetitions, old.comparison) == (None, USERS, 1, Comparison())
    assert stored_spec(stored(SWEEPS["grid"], ROOT)[0]).slo_value("p95_ms") == 50
