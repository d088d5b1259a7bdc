"""A point whose load was off Little's law (load_mismatch: users' time missing, its latency a lower bound) is
never the faster side of a verdict nor a cache's win, and the sentences say why."""

from __future__ import annotations

import pandas as pd

from farm.analysis.answer import analyse
from farm.analysis.verdict import INCONCLUSIVE, SLOWER
from tests.unit.test_verdicts import fixed


def test_a_point_off_littles_law_is_never_the_faster_side() -> None:
    # Given a monolith that looks faster (5 ms against 30 ms) at both loads, its load off Little's law at 8 users
    cells, hist = fixed({("monolith", 4): 5, ("monolith", 8): 5, ("microservices", 4): 30,
                         ("microservices", 8): 30}, reps=3)
    assert analyse(cells, hist).verdicts[0].verdict == SLOWER  # the premise: unflagged, slower throughout
    cells["load_mismatch"] = (cells["architecture"] == "monolith") & (cells["users"] == 8)
    # When the answer is computed
    [verdict] = analyse(cells, hist).verdicts
    # Then at 8 users the monolith is not the faster side, and the sentence names why
    assert {p.load: p.classification for p in verdict.points} == {4: "higher", 8: INCONCLUSIVE}
    assert ("left out as the faster side (users stalled or late starts, or load off Little's law): monolith at 8 "
            "users") in verdict.describe()
    assert verdict.as_json()["points"][1]["stalled"] == ["monolith"]


def test_a_cache_off_littles_law_never_wins_and_the_sentence_says_so() -> None:
    # Given two caches of one architecture, the faster one off Little's law
    cells, hist = fixed({("monolith", 4): 5, ("monolith", 8): 30}, reps=3)
    cells = cells.assign(cache=["none"] * 3 + ["local"] * 3, users=4, load_mismatch=[True] * 3 + [False] * 3)
    # When the caches are compared
    [compared] = analyse(cells, hist).cache_verdicts
    # Then the flagged one cannot lead, and the sentence says it could not win
    [point] = compared.points
    assert point.leader == "local" and point.cannot_win == ("none",)
    assert "cannot win (over the error-ratio SLO, short of the offered rate, users stalled or late starts, or load " \
           "off Little's law): none at 4 users" in compared.describe()


def test_the_recommendation_names_a_point_off_littles_law_it_left_out() -> None:
    cells, hist = fixed({("monolith", 4): 5, ("microservices", 4): 30}, reps=3)
    cells["load_mismatch"] = cells["architecture"] == "monolith"
    found = analyse(cells, hist, slo_ms=100)
    assert [c.architecture for c in found.choices] == ["microservices"]
    assert found.recommendation[-1] == ("left out (users stalled or late starts, or load off Little's law: latency "
                                        "a lower bound, never meeting the SLO): monolith, none cache, 1 instance at "
                                        "4 users")


def test_a_stalled_monolith_is_named_once_by_its_own_configuration_beside_scaled_microservices() -> None:
    # Given microservices measured at two catalog counts (replicas.catalog 1 and 2) and a monolith, which runs no
    # catalog, stalled at 4 users: the surface compares the monolith against each catalog count
    cells, hist = fixed({("monolith", 4): 5, ("microservices", 4): 30}, reps=3)
    micro = cells[cells["architecture"] == "microservices"]
    cells = pd.concat([cells[cells["architecture"] == "monolith"].assign(**{"replicas.catalog": None}),
                       micro.assign(**{"replicas.catalog": 1.0}),
                       micro.assign(**{"replicas.catalog": 2.0}, id=micro["id"] + "-c2")], ignore_index=True)
    hist = pd.concat([hist, hist[hist["cell_id"].str.startswith("microservices")].assign(
        cell_id=lambda h: h["cell_id"] + "-c2")], ignore_index=True)
    cells.attrs["params"] = ["architecture", "cache", "instances", "users", "replicas.catalog"]
    cells["load_stalled"] = cells["architecture"] == "monolith"
    # When the recommendation is phrased
    note = analyse(cells, hist, slo_ms=100).recommendation[-1]
    # Then the monolith is named once, as what it ran (no catalog count it never had)
    assert note.endswith("never meeting the SLO): monolith, none cache, 1 instance at 4 users"), note
