"""The compose driver's pure parts: rendering a recipe (values stay literal), reading `compose ps`, image tags."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from farm.stacks.compose_ps import ps_rows as _ps_rows
from farm.stacks.compose_render import context_hash
from farm.stacks.compose_render import render_project as _render
from farm.stacks.manifest import ComposeRecipe, Scalar, StackManifest, load_manifest

ROOT_WP = Path(__file__).resolve().parents[2] / "stacks" / "wordpress"
NASTY = """$(touch /tmp/pwned); rm -rf "*" 'x' `id` {{ 7*7 }} \\ #"""


def recipe(manifest: StackManifest) -> ComposeRecipe:
    assert manifest.compose is not None
    return manifest.compose


def stack(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml.j2").write_text(
        "services:\n  app:\n    image: {{ images.app | tojson }}\n"
        "    command: {{ ['serve', '--motd', params.motd, '--peers', upstreams.app | join(',')] | tojson }}\n"
        "    ports: [\"8080\"]\n")
    (tmp_path / "stack.yaml").write_text(
        "name: t\nlocustfile: l.py\nparameters: {motd: {type: str, default: hi}}\n"
        "local: {entry: app, services: [{name: app, command: [x]}]}\n"
        "compose: {file: compose.yaml.j2, instances: [app], scale: [app], entry: app, port: 8080}\n")
    return tmp_path


def test_a_parameter_with_shell_and_template_metacharacters_reaches_the_compose_file_literally(
        tmp_path: Path) -> None:
    manifest = load_manifest(stack(tmp_path))
    rendered = _render(manifest, recipe(manifest), {"motd": NASTY, "instances": 2}, "proj-1", {"app": "t-app:1"})
    command = yaml.safe_load(rendered["compose.yaml"])["services"]["app"]["command"]
    assert command == ["serve", "--motd", NASTY, "--peers", "proj-1-app-1:8080,proj-1-app-2:8080"]


def test_compose_ps_json_is_read_as_an_array_or_as_one_object_per_line() -> None:
    rows = [{"Name": "p-app-1", "Service": "app", "Publishers": [{"TargetPort": 8080, "PublishedPort": 32768}]},
            {"Name": "p-app-2", "Service": "app", "Publishers": []}]
    assert _ps_rows(json.dumps(rows)) == rows
    assert _ps_rows("\n".join(json.dumps(r) for r in rows)) == rows
    assert _ps_rows("") == []


def test_an_image_tag_changes_with_its_build_context_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    first = context_hash(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_bytes(b"\0")
    assert context_hash(tmp_path) == first
    (tmp_path / "app.py").write_text("print(1)\n")
    assert context_hash(tmp_path) != first


def test_extra_files_are_rendered_only_when_they_are_templates(tmp_path: Path) -> None:
    # Given a recipe with a template and a PHP file that looks like a template but is code
    folder = stack(tmp_path)
    (folder / "lb.conf.j2").write_text("upstream {{ upstreams.app | join(' ') }};\n")
    (folder / "cache.php").write_text("<?php $a = ['{{' => '{%']; // {# not a comment #}\n")
    text = (folder / "stack.yaml").read_text().replace(
        "compose: {", "compose: {files: {lb.conf: lb.conf.j2, wp/object-cache.php: cache.php}, ")
    (folder / "stack.yaml").write_text(text)
    manifest = load_manifest(folder)
    # When the project is rendered
    rendered = _render(manifest, recipe(manifest), {"motd": "hi", "instances": 2}, "p", {"app": "t-app:1"})
    # Then the template is rendered and the code arrives byte for byte, under its folder
    assert rendered["lb.conf"] == "upstream p-app-1:8080 p-app-2:8080;\n"
    assert rendered["wp/object-cache.php"] == (folder / "cache.php").read_text()


def test_an_extra_file_may_not_leave_the_project_folder(tmp_path: Path) -> None:
    import pytest

    from farm.errors import SpecError

    folder = stack(tmp_path)
    (folder / "x.txt").write_text("x")
    text = (folder / "stack.yaml").read_text().replace("compose: {", "compose: {files: {../x.txt: x.txt}, ")
    (folder / "stack.yaml").write_text(text)
    with pytest.raises(SpecError, match=r"compose.files: '../x.txt' must be a name inside the deployment's folder"):
        load_manifest(folder)


def test_only_the_images_the_rendered_project_names_are_built(tmp_path: Path) -> None:
    from farm.stacks.compose_render import image_tags
    from farm.stacks.compose_render import used_images as _used_images

    # Given a recipe with two images, of which the compose file (as the parameters render it) names one
    folder = stack(tmp_path)
    for image in ("debian", "official"):
        (folder / image).mkdir()
        (folder / image / "Dockerfile").write_text(f"FROM {image}\n")
    text = (folder / "stack.yaml").read_text().replace("compose: {", "compose: {images: {app: debian, "
                                                                          "other: official}, ")
    (folder / "stack.yaml").write_text(text)
    manifest = load_manifest(folder)
    tags = image_tags(manifest, recipe(manifest))
    rendered = _render(manifest, recipe(manifest), {"motd": "hi", "instances": 1}, "p", tags)
    # When the images to build are chosen
    used = _used_images(rendered["compose.yaml"], tags)
    # Then only the named one is, under a tag that carries its context's hash
    assert used == {"app": tags["app"]} and tags["app"].startswith("loadfarm/t-app:")
    assert tags["other"] != tags["app"]


def _wordpress(cache: str, instances: int, **extra: Scalar) -> dict[str, str]:
    from farm.stacks.compose_render import image_tags
    from tests.conftest import ROOT

    manifest = load_manifest(ROOT / "stacks" / "wordpress")
    params: dict[str, Scalar] = {**manifest.defaults(), "cache": cache, "instances": instances, **extra}
    return _render(manifest, recipe(manifest), params, "wp", image_tags(manifest, recipe(manifest)))


def test_the_wordpress_balancer_lists_every_replica_and_redis_comes_only_with_the_shared_cache() -> None:
    # Given the WordPress compose recipe at 1 and 4 instances, with and without the shared cache
    one, four = _wordpress("none", 1), _wordpress("shared", 4)
    # When / Then the balancer's upstream names exactly the replicas the scale creates (not three hard-coded)
    assert one["balancer.conf"].count("server wp-wordpress-") == 1
    assert [f"wp-wordpress-{i}:8080" in four["balancer.conf"] for i in range(1, 6)] == [True] * 4 + [False]
    # And Redis (with the instances' local forward to it) exists only with cache: shared
    services = {k: yaml.safe_load(v["compose.yaml"])["services"] for k, v in (("one", one), ("four", four))}
    assert "redis" not in services["one"] and "stream {" not in one["instance.conf"]
    assert "redis" in services["four"] and "proxy_pass redis:6379;" in four["instance.conf"]
    assert services["four"]["wordpress"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    # And every replica gets the list of replica names, to find its own index
    assert services["four"]["wordpress"]["command"][2:] == [f"wp-wordpress-{i}" for i in range(1, 5)]


def test_wordpress_setup_runs_once_after_a_real_query_and_before_the_instances() -> None:
    # Given the recipe as rendered with the page cache
    rendered = _wordpress("page", 2, posts=77)
    services = yaml.safe_load(rendered["compose.yaml"])["services"]
    # When / Then the database is healthy only when the site's user runs SELECT 1 over TCP
    test = services["db"]["healthcheck"]["test"]
    assert "--protocol=tcp" in test and "--user=wordpress" in test and test[-1] == "--execute=SELECT 1"
    # And the one-shot setup waits for it, seeds the requested size, and the instances wait for its success
    assert services["setup"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["setup"]["environment"] == {"POSTS": "77"} and "install.php" in services["setup"]["command"][2]
    assert services["wordpress"]["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
    # And the page cache lives on the balancer, on a volume the instances share for their reset
    assert "proxy_cache pages;" in rendered["balancer.conf"]
    assert "pagecache:/var/cache/farm" in services["balancer"]["volumes"]
    assert "pagecache:/var/cache/farm" in services["wordpress"]["volumes"]
    assert "proxy_cache" not in _wordpress("local", 2)["balancer.conf"]
    # And the stack's own PHP travels byte for byte, the images are the Debian-built one
    assert rendered["php/object-cache.php"] == (ROOT_WP / "php" / "object-cache.php").read_text()
    assert {s.get("image", "").split(":")[0] for s in services.values()} == {"loadfarm/wordpress-debian"}


def test_official_images_replace_every_debian_built_one() -> None:
    # Given the recipe with images: official (where a registry is reachable)
    services = yaml.safe_load(_wordpress("shared", 2, images="official")["compose.yaml"])["services"]
    # When / Then the database, Redis and the balancer are the official images, WordPress is built on its own
    assert services["db"]["image"] == "mysql:5.7" and services["db"]["environment"]["MYSQL_USER"] == "wordpress"
    assert services["redis"]["image"] == "redis:7" and services["balancer"]["image"].startswith("nginx:")
    assert services["wordpress"]["image"].startswith("loadfarm/wordpress-official:")


def test_readiness_probes_every_replica_and_keeps_those_that_fail_or_are_too_slow() -> None:
    import socket
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from farm.stacks.compose_probe import ProbeHttp
    from farm.stacks.driver import Endpoint

    def _unhealthy(endpoints: list[Endpoint], path: str, timeout: float) -> list[Endpoint]:
        answered = ProbeHttp(None, {}).answering(endpoints, path, timeout)
        return [e for e in endpoints if e not in answered]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/slow":
                time.sleep(1.5)
            self.send_response(200 if self.path != "/broken" else 500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    # Given replicas that answer, answer 500, answer too late, or are not listening at all
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port, dead = server.server_address[1], closed.getsockname()[1]
    closed.close()
    try:
        ok, broken = Endpoint("ok", 0, "127.0.0.1", port), Endpoint("broken", 0, "127.0.0.1", port)
        slow, gone = Endpoint("slow", 0, "127.0.0.1", port), Endpoint("gone", 0, "127.0.0.1", dead)
        # When they are probed with a 0.5 s limit (each at its own health path, here the service's name)
        paths = {"ok": "/", "broken": "/broken", "slow": "/slow", "gone": "/"}
        failing = [e for e in (ok, broken, slow, gone) if _unhealthy([e], paths[e.service], 0.5)]
        together = _unhealthy([ok, ok, ok], "/", 0.5)
    finally:
        server.shutdown()
    # Then only the one that answered 2xx in time counts as healthy, and probing several at once keeps order
    assert failing == [broken, slow, gone] and together == []
