"""The comparison keys come from the sweep: a stack that calls its architecture ``arch`` and its cache ``caching``
gets the same plan order, placement and verdict words as the shop that calls them ``architecture`` and ``cache``."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest

from farm.compare import Comparison
from farm.errors import SpecError
from farm.plan import expand
from farm.report.build import report_json
from farm.spec import LoadedSweep, parse_sweep
from farm.store.repository import Store
from scheduler.placement import units
from tests.conftest import ROOT
from tests.webstore import SWEEP, land

RENAMED = {"architecture": "arch", "cache": "caching"}


def renamed_stack(tmp_path: Path) -> Path:
    """The shop's stack folder with its parameters ``architecture`` and ``cache`` called ``arch`` and ``caching``."""
    folder = tmp_path / "renamed"
    shutil.copytree(ROOT / "stacks" / "shop", folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = (folder / "stack.yaml").read_text()
    for old, new in RENAMED.items():
        text = re.sub(rf"\b{old}\b(?=:|\s*}})", new, text)  # the keys, not the words of the descriptions
    (folder / "stack.yaml").write_text(text)
    return folder


def renamed_sweep(tmp_path: Path, name: str, compare: str = "compare: {architecture: arch, cache: caching}") -> str:
    """The serve tests' sweep, on the renamed stack, telling the farm which parameters to compare."""
    text = SWEEP.format(name=name).replace("stack: shop", f"stack: {renamed_stack(tmp_path)}")
    for old, new in RENAMED.items():
        text = text.replace(f"  {old}:", f"  {new}:")
    return text + compare + "\n"


def stored(where: Path, loaded: LoadedSweep) -> Store:
    """A SQLite store holding the sweep, every cell landed with the serve tests' synthetic latencies."""
    store = Store(f"sqlite:///{where}")
    store.migrate()
    plan = expand(loaded.spec, loaded.manifest)
    store.create_or_resume(loaded, plan)
    for cell in plan.cells:
        land(store, dataclasses.replace(cell, params=loaded.spec.comparison.roles(cell.params)))
    return store


def test_a_stack_calling_them_differently_gets_the_same_verdict_words(tmp_path: Path) -> None:
    # Given the same sweep twice: on the shop, and on a copy calling its parameters arch and caching
    usual = parse_sweep(SWEEP.format(name="usual"), source="usual.yaml", base=ROOT)
    other = parse_sweep(renamed_sweep(tmp_path, "other"), source="other.yaml", base=tmp_path)
    assert other.spec.comparison == Comparison(architecture="arch", cache="caching")
    # When both are planned, measured alike and reported
    usual_plan, other_plan = expand(usual.spec, usual.manifest), expand(other.spec, other.manifest)
    usual_doc = report_json(stored(tmp_path / "usual.db", usual), "usual")
    other_doc = report_json(stored(tmp_path / "other.db", other), "other")
    # Then the groups run in the same order, travel in the same units, and the answer reads the same
    roles = other.spec.comparison.roles
    assert [roles(g.config) for g in other_plan.groups] == [g.config for g in usual_plan.groups]
    assert [u.label for u in units([(g.id, g.config) for g in other_plan.groups], compare=other.spec.comparison)] \
        == [u.label for u in units([(g.id, g.config) for g in usual_plan.groups])]
    assert usual_doc["comparisons"] and {v["description"] for v in usual_doc["comparisons"]}
    for key in ("comparisons", "cache_comparisons", "recommendation", "cost_benefit"):
        assert other_doc[key] == usual_doc[key], key


def test_without_compare_the_fingerprint_is_the_one_stored_before(tmp_path: Path) -> None:
    usual = parse_sweep(SWEEP.format(name="usual"), source="usual.yaml", base=ROOT)
    spelled = parse_sweep(SWEEP.format(name="usual") + "compare: {architecture: architecture, cache: cache}\n",
                          source="usual.yaml", base=ROOT)
    assert usual.spec.compare is None and usual.spec.comparison == spelled.spec.comparison
    assert "compare" not in usual.spec.model_dump(exclude_none=True)
    assert spelled.spec.fingerprint() != usual.spec.fingerprint()  # given: part of what the sweep means


@pytest.mark.parametrize(("compare", "says"), [
    ("compare: {architecture: flavour, cache: caching}", "compare.architecture: stack 'shop' has no parameter"),
    ("compare: {architecture: arch, cache: arch}", "compare: architecture and cache must name two different"),
    ("compare: {architecture: arch, cache: users}", "compare: 'users' is a load or instances key"),
    ("compare: {architecture: arch, colour: x}", "compare.colour: unknown key; allowed keys here: architecture, cache"),
])
def test_comparison_keys_the_stack_does_not_have_are_refused_in_one_line(tmp_path: Path, compare: str,
                                                                          says: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_sweep(renamed_sweep(tmp_path, "bad", compare), source="bad.yaml", base=tmp_path)
    assert says in caught.value.message and "\n" not in caught.value.message


def test_a_stack_with_a_parameter_named_like_a_role_it_does_not_play_is_refused(tmp_path: Path) -> None:
    # Given the shop (it has a parameter called cache) and a sweep naming another parameter its cache
    text = SWEEP.format(name="both") + "compare: {cache: cache_size}\n"
    # Then the farm refuses to guess which one is the cache
    with pytest.raises(SpecError, match="also has a parameter named 'cache'"):
        parse_sweep(text, source="both.yaml", base=ROOT)
