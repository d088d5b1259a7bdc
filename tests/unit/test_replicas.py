"""Per-service replicas (issue 15 item 1): `scalable:` in a manifest, `replicas.<service>` matrix keys, their
refusals, the plan's groups and placement, the declared cost, and both recipes' replica counts and upstreams."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from farm.cell_cost import cell_cost, containers_by_service
from farm.errors import SpecError
from farm.plan import expand
from farm.sources import what_runs
from farm.spec import parse_sweep
from farm.stacks.compose_render import image_tags
from farm.stacks.compose_render import render_project as _render
from farm.stacks.local import LocalDriver, _render_files
from farm.stacks.manifest import load_manifest
from farm.stacks.scaling import applicable, compose_replicas, declared_cost, replicas_of
from scheduler.placement import units
from tests.conftest import ROOT

SHOP = ROOT / "stacks" / "shop"
SWEEP = """
name: r
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local]
  replicas.catalog: [1, 2, 3]
  users: [5, 10]
repetitions: 2
"""


def loaded(text: str = SWEEP):
    return parse_sweep(text, source="s.yaml", base=ROOT)


def refusal(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        loaded(text)
    return str(caught.value)


def test_the_shop_marks_its_services_scalable_and_prices_a_replica_in_cores() -> None:
    # Given the shop's manifest
    manifest = load_manifest(SHOP)
    # Then every app service scales on its own, costed in cores, a monolith instance at its worker processes
    assert manifest.cost_unit == "cores"
    assert set(manifest.scalable) == {"app", "catalog", "pricing", "cart", "gateway"}
    micro = {**manifest.defaults(), "architecture": "microservices", "instances": 1, "replicas.catalog": 3}
    assert declared_cost(manifest, micro) == (6.0, {
        "catalog": {"replicas": 3, "cost_per_replica": 1.0, "cost": 3.0},
        "pricing": {"replicas": 1, "cost_per_replica": 1.0, "cost": 1.0},
        "cart": {"replicas": 1, "cost_per_replica": 1.0, "cost": 1.0},
        "gateway": {"replicas": 1, "cost_per_replica": 1.0, "cost": 1.0}})
    # And `instances: N` is every scalable service × N; a monolith instance costs monolith_processes cores
    mono = {**manifest.defaults(), "architecture": "monolith", "instances": 2, "monolith_processes": 3}
    assert declared_cost(manifest, mono) == (6.0, {"app": {"replicas": 2, "cost_per_replica": 3.0, "cost": 6.0}})
    assert replicas_of(manifest, {**micro, "instances": 2}) == {"catalog": 3, "pricing": 2, "cart": 2, "gateway": 2}


def test_a_stack_without_scalable_services_has_no_declared_cost() -> None:
    manifest = load_manifest(ROOT / "stacks" / "sleepy")
    assert declared_cost(manifest, {"instances": 3}) == (None, {})


def test_replica_keys_group_configurations_and_the_other_architecture_ignores_them_with_a_note() -> None:
    # Given a sweep of both architectures that scales catalog over 1, 2, 3
    sweep = loaded()
    # When it is planned
    plan = expand(sweep.spec, sweep.manifest)
    configs = {tuple(sorted(g.config.items())) for g in plan.groups}
    # Then microservices have a configuration (a provisioning) per catalog count and cache; the monolith, which
    # runs no catalog, one per cache, without the key
    micro = [dict(c) for c in configs if dict(c)["architecture"] == "microservices"]
    mono = [dict(c) for c in configs if dict(c)["architecture"] == "monolith"]
    assert sorted((c["cache"], c["replicas.catalog"]) for c in micro) == [
        (cache, n) for cache in ("local", "none") for n in (1, 2, 3)]
    assert len(mono) == 2 and not any("replicas.catalog" in c for c in mono)
    assert len(plan.cells) == (6 + 2) * 2 * 2  # configurations × loads × repetitions
    # And every cell carries its replicas
    assert all("replicas.catalog" in c.params for c in plan.cells if c.params["architecture"] == "microservices")
    # And the run says the key is ignored for the monolith
    notes = [line for line in what_runs(sweep) if line.startswith("note:")]
    assert notes == ["note: matrix.replicas.catalog: ignored for architecture=monolith (it runs no catalog): "
                     "those cells run once, not once per value"]


def test_configurations_compared_point_by_point_travel_together_whatever_their_replicas() -> None:
    # Given the planned sweep (a group per repetition)
    sweep = loaded()
    plan = expand(sweep.spec, sweep.manifest)
    # When its groups are placed
    placed = units([(g.id, g.config) for g in plan.groups], targets=["a", "b"])
    # Then one unit per cache setting holds both architectures at every catalog count and every repetition
    assert len(placed) == 2
    for unit in placed:
        configs = [next(g.config for g in plan.groups if g.id == gid) for gid in unit.group_ids]
        assert len({c["cache"] for c in configs}) == 1
        assert sorted({(c["architecture"], c.get("replicas.catalog")) for c in configs}, key=str) == sorted(
            {("monolith", None), *(("microservices", n) for n in (1, 2, 3))}, key=str)
        assert len(unit.group_ids) == 4 * 2
    # And in the plan's order the groups of one comparison run next to each other, repetition by repetition
    caches = [g.config["cache"] for g in plan.groups]
    assert caches == sorted(caches)


@pytest.mark.parametrize(("matrix", "expected"), [
    ("replicas.balancer: [1, 2]", "matrix.replicas.balancer: 'balancer' is not a scalable service of stack 'shop'; "
                                  "scalable: app, catalog, pricing, cart, gateway"),
    ("replicas.nosuch: [2]", "'nosuch' is not a scalable service of stack 'shop'"),
    ("replicas.catalog: [0]", "matrix: 'replicas.catalog' values must be whole numbers from 1 to 256, not 0"),
    ("replicas.catalog: [1.5]", "whole numbers from 1 to 256"),
    ("replicas.: [1]", "'replicas.' names no service"),
])
def test_a_replica_key_the_stack_cannot_honour_is_refused_in_one_line(matrix: str, expected: str) -> None:
    message = refusal(f"name: r\nstack: shop\nmatrix:\n  {matrix}\n  users: [5]\n")
    assert expected in message and "\n" not in message


def test_a_replica_key_for_a_service_that_no_configuration_runs_is_refused() -> None:
    # Given a monolith-only sweep that scales catalog (a microservices service)
    message = refusal("name: r\nstack: shop\nmatrix:\n  architecture: [monolith]\n  replicas.catalog: [2]\n"
                      "  users: [5]\n")
    # Then it is refused, naming the key and when that service runs
    assert message == ("s.yaml: matrix.replicas.catalog: no configuration of this sweep runs 'catalog' (it runs only "
                       "with architecture=microservices); change the matrix or remove replicas.catalog")
    # And so is the default architecture (monolith) when the matrix does not name one
    assert "no configuration of this sweep runs 'cart'" in refusal(
        "name: r\nstack: shop\nmatrix:\n  replicas.cart: [2]\n  users: [5]\n")


def test_a_price_turns_cost_into_money_and_is_validated() -> None:
    sweep = loaded(SWEEP + "price: {per_unit_hour: 0.04, currency: EUR}\n")
    assert sweep.spec.price is not None and sweep.spec.price.per_unit_hour == 0.04
    assert sweep.spec.price.currency == "EUR"
    assert "price.per_unit_hour: Input should be greater than 0" in refusal(SWEEP + "price: {per_unit_hour: 0}\n")
    assert "price.cost: unknown key" in refusal(SWEEP + "price: {per_unit_hour: 1, cost: 2}\n")
    # And a sweep stored before price existed keeps its fingerprint
    assert loaded().spec.fingerprint() == loaded(SWEEP + "price: null\n").spec.fingerprint()


@pytest.mark.parametrize(("scalable", "expected"), [
    ("{db: {cost: 1}}", "scalable.db: not a service of the local recipe; services: app"),
    ("{app: {cost: -1}}", "must be a finite number ≥ 0"),
    ("{app: {cost: size}}", "scalable.app.cost: 'size' is not a number nor a numeric parameter"),
])
def test_a_manifest_scalable_section_is_checked(tmp_path: Path, scalable: str, expected: str) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: t\nlocustfile: l.py\nparameters: {size: {values: [s, m], default: s}}\n"
        f"scalable: {scalable}\nlocal:\n  entry: app\n  services:\n    - {{name: app, command: [x]}}\n")
    with pytest.raises(SpecError) as caught:
        load_manifest(tmp_path)
    assert expected in str(caught.value)


def test_a_scalable_service_may_not_also_set_its_own_replicas(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: t\nlocustfile: l.py\nscalable: {app: {cost: 2}}\nlocal:\n  entry: app\n  services:\n"
        "    - {name: app, command: [x], replicas: '{{ params.instances }}'}\n")
    with pytest.raises(SpecError, match=r"'app' is scalable, so its replicas come from the sweep"):
        load_manifest(tmp_path)


def _local_plan(params: dict[str, object], tmp_path: Path) -> tuple[dict[str, int], str]:
    """The process recipe's replicas per service, and the shop's nginx upstreams rendered for them."""
    manifest = load_manifest(SHOP)
    full = {**manifest.defaults(), **params}
    driver = LocalDriver(tmp_path, owned=False)
    context = driver._context(manifest, full, tmp_path)
    services = [s for s in manifest.local.services if s.enabled(full)]
    endpoints = driver._allocate(services, context, manifest.scalable)
    counts = {s.name: sum(1 for e in endpoints if e.service == s.name) for s in services}
    context["services"] = {s.name: [{"host": e.host, "port": e.port} for e in endpoints if e.service == s.name]
                           for s in manifest.local.services}
    conf = _render_files({"nginx.conf": "nginx.conf.j2"}, {**context, "port": 1}, tmp_path, "b", "balancer")
    for service in services:  # the gateway's backends: every replica of each service behind it
        if service.name == "gateway":
            gateway = driver._render(service, next(e for e in endpoints if e.service == "gateway"), context,
                                     tmp_path)
            behind = ("catalog", "pricing", "cart")
            backends = {arg.split("=")[0]: arg.split("=")[1].strip(",").split(",") for arg in gateway
                        if arg.split("=")[0] in behind}
            assert {k: [b.rsplit(":", 1)[1] for b in v] for k, v in backends.items()} == {
                k: [str(e.port) for e in endpoints if e.service == k] for k in behind}
            counts["gateway backends"] = sum(len(v) for v in backends.values())
    return counts, Path(conf["nginx.conf"]).read_text()


def test_processes_run_each_service_s_replicas_and_nginx_lists_the_front_s(tmp_path: Path) -> None:
    # Given microservices with catalog × 3 and gateway × 2 (the others at instances = 1)
    params = {"architecture": "microservices", "instances": 1, "replicas.catalog": 3, "replicas.gateway": 2}
    counts, conf = _local_plan(params, tmp_path)
    # Then the process recipe starts that many replicas of each, one balancer
    assert counts == {"catalog": 3, "pricing": 1, "cart": 1, "gateway": 2, "balancer": 1, "gateway backends": 5}
    # And nginx's two upstreams list the two gateways, nothing else
    assert conf.count("server 127.0.0.1:") == 2 * 2
    # And a monolith of 2 instances runs 2 apps behind it
    counts, conf = _local_plan({"architecture": "monolith", "instances": 2}, tmp_path)
    assert counts == {"app": 2, "balancer": 1} and conf.count("server 127.0.0.1:") == 2 * 2


def test_compose_scales_each_service_and_lists_every_replica_upstream() -> None:
    # Given the shop's compose recipe for microservices with catalog × 3, pricing × 2, instances 1
    manifest = load_manifest(SHOP)
    assert manifest.compose is not None
    params = {**manifest.defaults(), "architecture": "microservices", "instances": 1, "replicas.catalog": 3,
              "replicas.pricing": 2}
    rendered = _render(manifest, manifest.compose, params, "p", image_tags(manifest, manifest.compose))
    # Then the gateway's backends name every catalog and pricing replica, the cart's every pricing replica
    services = yaml.safe_load(rendered["compose.yaml"])["services"]
    gateway = services["gateway"]["command"]
    assert "catalog=p-catalog-1:8080,p-catalog-2:8080,p-catalog-3:8080" in gateway
    assert "pricing=p-pricing-1:8080,p-pricing-2:8080" in gateway and "cart=p-cart-1:8080" in gateway
    assert "pricing=p-pricing-1:8080,p-pricing-2:8080" in services["cart"]["command"]
    # And the balancer's upstream is the one gateway
    assert rendered["nginx.conf"].count("server p-gateway-1:8080") == 2 and "p-gateway-2" not in rendered["nginx.conf"]
    # And `up` passes each service's own --scale
    assert compose_replicas(manifest, params, manifest.compose.scale) == {
        "app": 1, "catalog": 3, "pricing": 2, "cart": 1, "gateway": 1}


def test_applicable_drops_only_the_keys_of_services_a_configuration_does_not_run() -> None:
    manifest = load_manifest(SHOP)
    assert applicable(manifest, {"architecture": "monolith", "replicas.catalog": 2, "replicas.app": 3}) == {
        "architecture": "monolith", "replicas.app": 3}


def test_a_cell_s_cost_is_declared_from_its_replicas_and_measured_per_request_per_service() -> None:
    # Given microservices with catalog × 2 whose services spent these CPU seconds over a window of 1,000 requests
    manifest = load_manifest(SHOP)
    params = {"architecture": "microservices", "instances": 1, "replicas.catalog": 2}
    cpu = {"catalog": 2.0, "pricing": 1.0, "cart": 0.5, "gateway": 1.0, "balancer": 0.5}
    # When the cell's cost is computed
    cost = cell_cost(manifest, params, 1000, cpu, {"catalog": 2, "balancer": 1})
    # Then the declared cost is Σ replicas × cost per replica, the measured one the SUT's CPU ms per request
    assert cost["cost"] == 5.0
    assert cost["cpu_ms_per_request"] == 5.0
    # And each service has its replicas, cost, CPU ms per request and share; the balancer is no scalable service
    assert cost["cost_breakdown"]["catalog"] == {"replicas": 2, "cost_per_replica": 1.0, "cost": 2.0,
                                                 "scalable": True, "cpu_ms_per_request": 2.0, "cpu_share": 0.4}
    assert cost["cost_breakdown"]["balancer"] == {"replicas": 1, "scalable": False, "cpu_ms_per_request": 0.5,
                                                  "cpu_share": 0.1}
    # And without a measurement (or a request) the declared cost stands alone
    unmeasured = cell_cost(manifest, params, 0, None)
    assert unmeasured["cost"] == 5.0 and unmeasured["cpu_ms_per_request"] is None
    assert "cpu_share" not in unmeasured["cost_breakdown"]["catalog"]


def test_a_sut_host_s_containers_are_summed_per_compose_service() -> None:
    window = {"services": {"p-catalog-1": {"cpu_s": 1.5}, "p-catalog-2": {"cpu_s": 0.5},
                           "p-balancer-1": {"cpu_s": 0.25}, "p-cart-1": {"cpu_s": None}}}
    assert containers_by_service(window, "p") == ({"catalog": 2.0, "balancer": 0.25},
                                                  {"catalog": 2, "balancer": 1, "cart": 1})
    assert containers_by_service(None, "p") == ({}, {})


def test_a_price_turns_declared_cost_into_money_per_million_requests() -> None:
    from farm.analysis.cost import per_hour, per_million_requests, sweep_price

    # Given 5 cores at 0.04 per core-hour serving 100 requests/s: 0.2 per hour, 10,000 s per million requests
    assert per_hour(5.0, 0.04) == pytest.approx(0.2)
    assert per_million_requests(5.0, 100.0, 0.04) == pytest.approx(0.2 * 10_000 / 3600)
    # And nothing where the cost or the throughput is unknown
    assert per_million_requests(None, 100.0, 0.04) is None and per_million_requests(5.0, 0.0, 0.04) is None
    # And a stored spec's price is read back
    price = sweep_price({"price": {"per_unit_hour": 0.04, "currency": "EUR"}})
    assert price is not None and price.currency == "EUR" and sweep_price({}) is None


def test_the_analysis_compares_each_replica_count_apart_against_the_same_monolith_cells() -> None:
    from farm.analysis.answer import separate_other_parameters
    from farm.analysis.frame import cells_frame
    from farm.analysis.surfaces import excluded

    # Given a monolith cell (no catalog) and microservices cells at catalog × 1 and × 2, one of them failed
    records = [{"params": {"architecture": "monolith", "cache": "none", "instances": 1, "users": 6},
                "id": "m", "status": "failed", "repetition": 1},
               *({"params": {"architecture": "microservices", "cache": "none", "instances": 1, "users": 6,
                             "replicas.catalog": n}, "id": f"s{n}", "status": "done", "repetition": 1}
                 for n in (1, 2))]
    # When the analysis separates the configurations
    cells = separate_other_parameters(cells_frame(records))
    # Then each catalog count is its own comparison, and the monolith's cell takes part in both
    assert sorted(zip(cells["cache"], cells["architecture"], strict=True)) == [
        ("none · catalog×1", "microservices"), ("none · catalog×1", "monolith"),
        ("none · catalog×2", "microservices"), ("none · catalog×2", "monolith")]
    # And a left-out cell is listed once
    assert list(excluded(cells)["id"]) == ["m"]


def test_a_monolith_cell_set_against_two_replica_counts_brings_its_histogram_to_both() -> None:
    import pandas as pd

    from farm.analysis.answer import analyse
    from farm.analysis.frame import cells_frame

    # Given one monolith cell and microservices cells at catalog × 1 and × 2, each with a histogram
    def cell(arch: str, rep: int, catalog: int | None) -> dict[str, object]:
        params = {"architecture": arch, "cache": "none", "instances": 1, "users": 6,
                  **({"replicas.catalog": catalog} if catalog else {})}
        return {"params": params, "id": f"{arch}{catalog}{rep}", "status": "done", "repetition": rep,
                "requests": 100, "failures": 0, "rps": 10.0, "p95_ms": 50.0, "cache_hits": None, "cache_misses": None}

    records = [cell(a, r, n) for r in (1, 2, 3) for a, n in (("monolith", None), ("microservices", 1),
                                                            ("microservices", 2))]
    hist = pd.DataFrame([{"cell_id": r["id"], "ms": 40 if "monolith" in str(r["id"]) else 90, "count": 100}
                         for r in records])
    # When it is analysed
    analysis = analyse(cells_frame(records), hist)
    # Then each catalog count has its comparison, and the monolith's p95 is its own histogram's in both
    surface = analysis.surface
    mono = surface[surface["architecture"] == "monolith"]
    assert sorted(mono["cache"]) == ["none · catalog×1", "none · catalog×2"]
    assert list(mono["p95_ms"]) == [40.0, 40.0] and list(mono["n"]) == [3, 3]
    assert sorted(v.cache for v in analysis.verdicts) == ["none · catalog×1", "none · catalog×2"]
    # And the report's tables still list each cell once, the monolith's without a replica count
    assert len(analysis.cells) == len(records)
    assert sorted(set(analysis.cells["cache"])) == ["none", "none · catalog×1", "none · catalog×2"]


def test_caches_are_compared_at_equal_replicas_and_an_architecture_without_them_once() -> None:
    import pandas as pd

    from farm.analysis.answer import analyse
    from farm.analysis.frame import cells_frame

    # Given both caches for the monolith and for microservices at catalog × 1 and × 2, three repetitions each
    records, hist = [], []
    for rep in (1, 2, 3):
        for cache, ms in (("none", 90), ("local", 40)):
            for arch, catalog in (("monolith", None), ("microservices", 1), ("microservices", 2)):
                cid = f"{arch}{catalog}{cache}{rep}"
                params = {"architecture": arch, "cache": cache, "instances": 1, "users": 6,
                          **({"replicas.catalog": catalog} if catalog else {})}
                records.append({"params": params, "id": cid, "status": "done", "repetition": rep, "requests": 100,
                                "failures": 0, "rps": 10.0, "cache_hits": None, "cache_misses": None})
                hist.append({"cell_id": cid, "ms": ms + (catalog or 0), "count": 100})
    # When it is analysed
    found = analyse(cells_frame(records), pd.DataFrame(hist)).cache_verdicts
    # Then microservices' caches are compared at each catalog count, the monolith's once
    assert sorted((v.architecture, v.caches) for v in found) == [
        ("microservices", ("local · catalog×1", "none · catalog×1")),
        ("microservices", ("local · catalog×2", "none · catalog×2")),
        ("monolith", ("local · catalog×1", "none · catalog×1"))]
    assert all(p.leader.startswith("local") for v in found for p in v.points)


def test_a_scalable_service_the_compose_recipe_does_not_scale_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: t\nlocustfile: l.py\nscalable: {app: {cost: 1}}\nlocal:\n  entry: app\n  services:\n"
        "    - {name: app, command: [x]}\ncompose: {file: c.j2, instances: [app], entry: app}\n")
    with pytest.raises(SpecError, match=r"scalable.app: the compose recipe does not scale it; add it to compose"):
        load_manifest(tmp_path)
