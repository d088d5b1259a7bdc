"""SUT services reachable only by the farm: ports published on the lab address, a reset token per deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from farm.errors import SpecError
from farm.remote.hosts import load_hosts
from farm.stacks.compose_limits import check_published, publish_address
from farm.stacks.compose_render import image_tags
from farm.stacks.compose_render import render_project as _render
from farm.stacks.manifest import load_manifest
from tests.conftest import ROOT

COMPOSE = "services:\n  app:\n    image: x\n    ports: [{entry}]\n"


@pytest.mark.parametrize("entry", ['"8080"', "8080", '"0.0.0.0::8080"', '"[::]::8080"', '"10.0.0.6::8080"',
                                   '"8000:8080"', "{target: 8080}", "{target: 8080, host_ip: 0.0.0.0}"])
def test_a_port_published_on_any_address_but_the_lab_one_is_refused(entry: str) -> None:
    with pytest.raises(SpecError, match=r"service 'app' publishes .* of the SUT host") as caught:
        check_published(COMPOSE.format(entry=entry), "10.0.0.5")
    assert "10.0.0.5::8080" in str(caught.value.hint)


@pytest.mark.parametrize(("entry", "bind"), [('"10.0.0.5::8080"', "10.0.0.5"), ('"10.0.0.5:9000:8080"', "10.0.0.5"),
                                             ('"[fd00::5]::8080"', "fd00::5"),
                                             ("{target: 8080, host_ip: 10.0.0.5}", "10.0.0.5")])
def test_a_port_published_on_the_lab_address_passes(entry: str, bind: str) -> None:
    check_published(COMPOSE.format(entry=entry), bind)
    assert publish_address(bind, 8080) in ("10.0.0.5::8080", "[fd00::5]::8080")


@pytest.mark.parametrize(("stack", "params"), [
    ("shop", {"architecture": "microservices", "cache": "shared", "instances": 2}),
    ("shop", {"architecture": "monolith", "cache": "none", "instances": 1}),
    ("wordpress", {"cache": "page", "instances": 2, "images": "debian"}),
])
def test_the_builtin_compose_recipes_publish_on_the_lab_address_and_pass_the_token(stack: str,
                                                                                   params: dict[str, object]) -> None:
    # Given a built-in stack's compose recipe rendered for a deployment on a host whose lab address is 10.0.0.5
    manifest = load_manifest(ROOT / "stacks" / stack)
    assert manifest.compose is not None
    values = {**manifest.defaults(), **params}
    rendered = _render(manifest, manifest.compose, values, "p", image_tags(manifest, manifest.compose),
                       bind="10.0.0.5", token="t0ken")
    # Then every port it publishes is on that address, and its instances get the deployment's token
    check_published(rendered["compose.yaml"], "10.0.0.5")
    services = yaml.safe_load(rendered["compose.yaml"])["services"]
    for name in manifest.compose.instances:
        if name in services:
            assert services[name]["environment"]["LOADFARM_TOKEN"] == "t0ken", name


def test_a_hosts_file_bind_is_an_address_of_the_host(tmp_path: Path) -> None:
    path = tmp_path / "farm-hosts.yaml"
    path.write_text("sut_hosts:\n  a: {ssh: farm@h, bind: 10.0.0.5}\n  b: {ssh: farm@h2}\n")
    hosts = load_hosts(path)
    assert (hosts["a"].bind, hosts["b"].bind) == ("10.0.0.5", None)
    for bad, words in (("sut-a", "expected the IP address"), ("0.0.0.0", "is every address"), ("::", "every")):
        path.write_text(f"sut_hosts:\n  a: {{ssh: farm@h, bind: '{bad}'}}\n")
        with pytest.raises(SpecError, match=words):
            load_hosts(path)


def test_each_deployment_gets_its_own_token() -> None:
    from farm.stacks.driver import new_token

    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 32 for t in tokens)
