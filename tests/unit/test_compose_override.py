"""A team's compose file unchanged, the farm's needs in an override beside it (#17 item 2): the pure part."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from farm.errors import SpecError
from farm.stacks.compose_limits import DEPLOYMENT_LABEL
from farm.stacks.compose_override import farm_override, is_template, read_services
from farm.stacks.compose_probe import PROBE_SERVICE
from farm.stacks.compose_render import render_project as _render
from farm.stacks.manifest import load_manifest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stacks" / "classic-compose"
THEIRS = """services:
  web:
    image: nginx
    ports: ["8080:80", 2222:22, {target: 443, published: 8443, protocol: tcp}]
  app:
    image: app
  worker:
    image: app
    ports: ["9000:80"]
  db:
    image: db
"""


class _Tags(yaml.SafeLoader):
    """Reads Compose's `!override` as a plain list, to look at the override's content."""


_Tags.add_constructor("!override", lambda loader, node: ["!override", *loader.construct_sequence(node)])


def override(text: str = THEIRS, **kwargs: object) -> tuple[dict[str, dict[str, object]], list[str]]:
    args: dict[str, object] = {"project": "p1", "bind": "10.0.0.2", "port": 80, "entry": "web", "reached": {"app"},
                               "scaled": {"app": 2, "worker": 3}, "token": "t0k", **kwargs}
    written = farm_override(text, "docker-compose.yml", **args)  # type: ignore[arg-type]
    services = yaml.load(written.text, Loader=_Tags)["services"]
    assert written.probe == (PROBE_SERVICE in services)
    return services, written.notes


def test_the_entry_keeps_its_fixed_port_on_the_lab_address_and_a_silent_replica_stays_unpublished() -> None:
    services, _notes = override()
    # Then the entry's fixed ports stay fixed (replacing, not adding to, the team's), on the lab address only
    assert services["web"]["ports"] == ["!override", "10.0.0.2:8080:80", "10.0.0.2:2222:22", "10.0.0.2:8443:443"]
    # And the scaled app that publishes nothing publishes nothing still: the farm's probe joins its network
    assert "ports" not in services["app"]
    probe = services[PROBE_SERVICE]
    assert probe["networks"] == ["default"] and probe["environment"] == {"LOADFARM_TOKEN": "t0k"}
    assert "ports" not in probe and probe["mem_limit"] and probe["pids_limit"]
    # And a service the farm does not reach and that publishes nothing gets no port
    assert "ports" not in services["db"]
    # And every service carries the deployment's label, the probe too
    assert all(s["labels"] == {DEPLOYMENT_LABEL: "p1"} for s in services.values())


def test_the_probe_joins_the_networks_of_the_services_it_reaches_and_no_probe_when_all_publish() -> None:
    # Given an app on two networks of its own and a worker on the default network, both reached
    theirs = THEIRS.replace("  app:\n    image: app\n",
                            "  app:\n    image: app\n    networks: {front: {aliases: [a]}, back: {}}\n")
    services, _ = override(theirs, reached={"app", "db"})
    # Then the probe is on all three
    assert services[PROBE_SERVICE]["networks"] == ["back", "default", "front"]
    # And when every reached service publishes its port, there is no probe
    services, _ = override(reached={"worker"}, scaled={})
    assert PROBE_SERVICE not in services


def test_an_entry_that_publishes_nothing_is_published_on_an_ephemeral_lab_port() -> None:
    services, _ = override(entry="db", reached=set())
    assert services["db"]["ports"] == ["!override", "10.0.0.2::80"] and PROBE_SERVICE not in services


def test_a_team_service_named_like_the_probe_or_out_of_the_projects_networks_is_refused_in_one_line() -> None:
    with pytest.raises(SpecError, match="service named farm-probe, which is the farm's own"):
        override(THEIRS + "  farm-probe:\n    image: x\n")
    with pytest.raises(SpecError, match=r"services\.app sets network_mode"):
        override(THEIRS.replace("    image: app\n", "    image: app\n    network_mode: host\n", 1))


def test_a_scaled_service_with_a_fixed_host_port_is_published_on_ephemeral_ports_and_the_user_is_told() -> None:
    services, notes = override()
    assert services["worker"]["ports"] == ["!override", "10.0.0.2::80"]
    assert len(notes) == 1 and "worker" in notes[0] and "9000" in notes[0] and "ephemeral" in notes[0]


def test_a_service_the_recipe_names_but_the_file_lacks_is_refused_in_one_line() -> None:
    with pytest.raises(SpecError, match="names api, which the compose file does not define"):
        override(reached={"web", "api"})


def test_a_port_range_is_refused_with_the_fix() -> None:
    with pytest.raises(SpecError, match="port ranges are not supported"):
        override(THEIRS.replace('"9000:80"', '"9000-9002:80"'))


def test_an_unquoted_host_port_reads_as_compose_reads_it_not_as_a_base_60_number() -> None:
    assert read_services(THEIRS, "f")["web"]["ports"][1] == "2222:22"


def test_the_example_compose_file_reaches_the_host_byte_for_byte(tmp_path: Path) -> None:
    # Given the classic example's plain compose file (not a template)
    manifest = load_manifest(EXAMPLE)
    assert manifest.compose is not None and not is_template(manifest.compose.file)
    # When the project is rendered
    rendered = _render(manifest, manifest.compose, {"instances": 2}, "p", {})
    # Then their file is exactly what they wrote
    assert rendered["compose.yaml"] == (EXAMPLE / "docker-compose.yml").read_text()
    services, notes = override(rendered["compose.yaml"], reached={"app"}, scaled={"app": 2})
    assert services["web"]["ports"] == ["!override", "10.0.0.2:8080:80"] and not notes


def test_a_reached_replica_that_publishes_nothing_is_reached_through_the_probe_or_is_an_error_naming_it() -> None:
    from farm.errors import ProvisionError
    from farm.stacks.compose_ps import replica_endpoints

    # Given `compose ps` rows: the entry and one app replica publish port 80, the second app replica nothing
    rows = [{"Name": "p-web-1", "Service": "web", "Publishers": [{"TargetPort": 80, "PublishedPort": 8080}]},
            {"Name": "p-app-1", "Service": "app", "Publishers": [{"TargetPort": 80, "PublishedPort": 32768}]},
            {"Name": "p-app-2", "Service": "app", "Publishers": []},
            {"Name": "p-redis-1", "Service": "redis", "Publishers": []}]
    # When the farm looks for the reached services' replicas
    with pytest.raises(ProvisionError) as refused:
        replica_endpoints(rows, "p", {"web", "app"}, 80, "10.0.0.2")
    # Then the replica it cannot reach is named (a service it does not reach is no concern)
    assert "cannot reach p-app-2" in refused.value.message and "redis" not in refused.value.message
    # And with the farm's probe in the project, that replica is reached from it, by its container name
    probe = {"Name": "p-farm-probe-1", "Service": PROBE_SERVICE, "Publishers": []}
    found = replica_endpoints([*rows, probe], "p", {"web", "app"}, 80, "10.0.0.2")
    assert [(e.service, e.replica, e.host, e.port, e.via) for e in found] == [
        ("app", 0, "10.0.0.2", 32768, ""), ("app", 1, "p-app-2", 80, "p-farm-probe-1"),
        ("web", 0, "10.0.0.2", 8080, "")]
    # And with both replicas published, every one is found, in order
    rows[2]["Publishers"] = [{"TargetPort": 80, "PublishedPort": 32769}]
    found = replica_endpoints(rows, "p", {"web", "app"}, 80, "10.0.0.2")
    assert [(e.service, e.replica, e.port) for e in found] == [("app", 0, 32768), ("app", 1, 32769), ("web", 0, 8080)]
