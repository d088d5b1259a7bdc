"""The whole answer for one sweep: surfaces, verdicts, crossovers, recommendation, hosts, exclusions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from farm.analysis.caches import CacheVerdict, cache_verdicts
from farm.analysis.configs import config_points
from farm.analysis.cost import StoredPrice as Price
from farm.analysis.costbenefit import CostBenefit, answers
from farm.analysis.crossover import Crossover, crossovers, difference
from farm.analysis.hosts import host_agreement
from farm.analysis.recommend import Choice, phrase, recommend, stalled_note
from farm.analysis.replicas import label as label_replicas
from farm.analysis.replicas import replica_columns, spread
from farm.analysis.surfaces import excluded, surfaces_with_draws, usable
from farm.analysis.sut import sut_cost
from farm.analysis.verdict import UNIT, Verdict, verdicts
from farm.load_level import RATE, UNITS, USERS, LoadKind, load_kind
from farm.stacks.scaling import is_replica_key


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows, computed from the cells (and their histograms) of one sweep."""

    metric: str
    cells: pd.DataFrame
    surface: pd.DataFrame
    difference: pd.DataFrame
    crossovers: list[Crossover]
    choices: list[Choice]
    recommendation: list[str]
    excluded: pd.DataFrame
    hosts: list[str]
    per_host: pd.DataFrame = field(default_factory=pd.DataFrame)
    host_crossovers: list[Crossover] = field(default_factory=list)
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    sut_cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: list[Verdict] = field(default_factory=list)
    host_verdicts: list[Verdict] = field(default_factory=list)
    max_error_ratio: float = 0.01
    cache_verdicts: list[CacheVerdict] = field(default_factory=list)  # which cache wins, per instances and load
    unit: str = UNIT  # of the load levels (the ``users`` column of every frame): users, or req/s offered
    load: LoadKind = USERS  # the sweep's load axis: users (closed loop) or rate (open loop)
    cost_benefit: list[CostBenefit] = field(default_factory=list)  # per cache: cheapest SLO-meeting cost, switch
    configs: pd.DataFrame = field(default_factory=pd.DataFrame)  # every configuration measured, per load


KEYED = ("architecture", "cache", "instances", "users", "rate", "repetition")


def separate_other_parameters(cells: pd.DataFrame, spread_unrun: bool = True) -> pd.DataFrame:
    """Keep configurations that differ in any other varying parameter apart (never pooled as repetitions): each
    comparison is labelled by its cache setting and those parameters, e.g. ``local · delay_ms=50``; per-service
    replicas as ``local · catalog×2``, the architecture that does not run that service set against each
    (`farm.analysis.replicas`; ``spread_unrun=False``: one row per cell, for tables)."""
    params = cells.attrs.get("params", ())
    scaled = replica_columns(cells)
    extra = [k for k in params if k not in KEYED and k in cells.columns and cells[k].nunique(dropna=False) > 1
             and not is_replica_key(k)]
    if not extra and not scaled:
        return cells
    cells = spread(cells, scaled) if spread_unrun else cells
    label = cells["cache"].astype(str)
    for key in extra:
        label = label + f" · {key}=" + cells[key].astype(str)
    return cells.assign(cache=label + label_replicas(cells, scaled) if scaled else label)


def analyse(cells: pd.DataFrame, hist: pd.DataFrame | None = None, *, metric: str = "p95_ms",
            slo_ms: float | None = None, max_error_ratio: float = 0.01,
            costs: Mapping[str, float] | None = None, search: bool = False, price: Price | None = None,
            load: LoadKind | None = None) -> Analysis:
    """Compute the answer. With cells from several hosts, verdicts are also computed within each host.

    ``price``: the sweep's price of a cost unit per hour; the cost answer then says money per million requests.

    ``search``: the cells of a capacity search, whose configurations differ from load to load: comparisons at
    equal replicas and of caches do not apply; the cost answer and the recommendation (by configuration) do.

    ``load``: the sweep's load axis (`farm.load_level`; default: that of the cells' parameters). With open-loop
    load the axis is the rate offered: it fills the ``users`` column every surface, verdict and recommendation is
    keyed by, and ``unit`` says so.
    """
    load = load or load_kind(cells.columns)
    unit = UNITS[load]
    if load == RATE and "rate" in cells.columns:
        cells = cells.assign(users=cells["rate"])
    defaults = {"architecture": "-", "cache": "-", "instances": 1}
    # The cost answer keeps configurations apart (instances, replicas.X) before they are relabelled below; it
    # needs an SLO latency to meet, and costs a second bootstrap, so it is computed only with one.
    configs = pd.DataFrame() if slo_ms is None else config_points(
        cells.assign(**{k: v for k, v in defaults.items() if k not in cells.columns}), hist, slo_ms=slo_ms,
        max_error_ratio=max_error_ratio, costs=costs, metric=metric)
    cells = cells.assign(**{k: v for k, v in defaults.items() if k not in cells.columns})
    # compared: a cell may sit in several comparisons (per-service replicas); cells: one row per cell, for tables
    compared, cells = separate_other_parameters(cells), separate_other_parameters(cells, spread_unrun=False)
    surface, draws = surfaces_with_draws(compared, hist)
    both = not surface.empty and {"monolith", "microservices"} <= set(surface["architecture"])
    has_arch = both and not search  # comparisons at equal replicas: not for a search
    found = verdicts(surface, draws, metric, max_error_ratio, unit) if has_arch else []
    hosts = sorted(str(h) for h in cells.get("host", pd.Series(dtype=str)).dropna().unique())
    per_host = pd.DataFrame()
    host_found: list[Verdict] = []
    agreement = pd.DataFrame()
    if len(hosts) > 1:
        per_host, host_draws = surfaces_with_draws(compared, hist, by_host=True)
        host_found = verdicts(per_host, host_draws, metric, max_error_ratio, unit) if has_arch else []
        agreement = host_agreement(per_host, metric)
    choices = recommend(configs, metric=metric) if both else []
    return Analysis(metric=metric, cells=cells, surface=surface, difference=difference(found),
                    crossovers=crossovers(found), choices=choices,
                    recommendation=phrase(choices, unit) + (stalled_note(usable(cells), unit) if choices else []),
                    excluded=excluded(cells), hosts=hosts, per_host=per_host, host_crossovers=crossovers(host_found),
                    agreement=agreement, sut_cost=sut_cost(cells), verdicts=found, host_verdicts=host_found,
                    max_error_ratio=max_error_ratio, unit=unit, load=load,
                    cache_verdicts=[] if search else cache_verdicts(surface, draws, metric, max_error_ratio, unit),
                    cost_benefit=answers(configs, slo_ms=slo_ms, metric=metric, unit=unit, price=price),
                    configs=configs)
