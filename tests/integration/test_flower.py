"""Flower on the farm's Celery app: its API answers with basic auth, lists workers and tasks, refuses without;
HTTPS with a certificate; host names for --address; credentials Flower cannot use are refused before it starts."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from farm.stacks.probe import free_port, tcp_open
from tests.conftest import farm
from tests.integration.conftest import require
from tests.integration.lab import Host, Redis, Worker

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]


def get(url: str, auth: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_flower_api_with_auth_lists_workers_and_tasks_and_refuses_without(tmp_path: Path) -> None:
    require("redis-server", "apt-get install redis-server")
    redis = Redis(tmp_path / "redis", []).start()
    db = f"sqlite:///{tmp_path / 'farm.db'}"
    env = {"FARM_BROKER_URL": redis.url(), "FARM_DATABASE_URL": db}
    worker = Worker(Host("flowerbox", None, "127.0.0.1"), env, tmp_path).start()
    port = free_port()
    flower = subprocess.Popen([sys.executable, "-m", "farm", "flower", "--port", str(port)],
                              env={**os.environ, **env, "FARM_FLOWER_AUTH": "admin:s3cret-pass"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        sweep = tmp_path / "f.yaml"
        sweep.write_text("name: watched\nstack: shop\nmatrix: {users: [2]}\nload: {duration: 2s, warmup: 1s}\n")
        assert farm("submit", str(sweep), cwd=tmp_path, env=env).returncode == 0
        deadline = time.monotonic() + 90
        while not tcp_open("127.0.0.1", port):
            assert time.monotonic() < deadline and flower.poll() is None, "flower did not start"
            time.sleep(0.3)
        # Without credentials the API refuses
        assert get(f"http://127.0.0.1:{port}/api/workers")[0] == 401
        assert get(f"http://127.0.0.1:{port}/api/workers", "admin:wrong")[0] == 401
        # With them it lists our worker and, once run, the sweep's task with readable arguments
        tasks: dict = {}
        while time.monotonic() < deadline:
            status, workers = get(f"http://127.0.0.1:{port}/api/workers?refresh=1", "admin:s3cret-pass")
            tasks_status, tasks = get(f"http://127.0.0.1:{port}/api/tasks", "admin:s3cret-pass")  # type: ignore[assignment]
            if status == tasks_status == 200 and any("flowerbox" in w for w in (workers or {})) and tasks:
                break
            time.sleep(1.0)
        assert any("flowerbox" in w for w in (workers or {}))
        assert tasks, "Flower saw no task"
        task = next(iter(tasks.values()))
        assert task["name"] == "loadfarm.execute_groups"
        assert "watched" in str(task.get("kwargs"))
        assert redis.password not in json.dumps(tasks)
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(10)
        worker.stop()
        redis.stop()


def test_flower_off_loopback_without_a_password_is_refused(tmp_path: Path) -> None:
    result = farm("flower", "--address", "0.0.0.0", cwd=tmp_path, env={"FARM_BROKER_URL": "redis://:x@127.0.0.1:1/0"})
    assert result.returncode == 2
    assert "without a password" in result.stderr


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 with its unencrypted key, made by openssl."""
    require("openssl", "apt-get install openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def test_flower_serves_https_on_a_host_name_with_auth_and_keeps_the_password_off_its_command_line(
        tmp_path: Path) -> None:
    # Given a lab broker, a self-signed certificate, and a password holding a colon and a space
    require("redis-server", "apt-get install redis-server")
    redis = Redis(tmp_path / "redis", []).start()
    cert, key = self_signed(tmp_path)
    password = "pa:ss w0rd-" + os.urandom(4).hex()
    env = {"FARM_BROKER_URL": redis.url(), "FARM_FLOWER_AUTH": f"admin:{password}"}
    port = free_port()
    log = tmp_path / "flower.log"

    # When `farm flower` listens on a host name with --certfile/--keyfile
    with log.open("wb") as out:
        flower = subprocess.Popen([sys.executable, "-m", "farm", "flower", "--address", "localhost",
                                   "--port", str(port), "--certfile", str(cert), "--keyfile", str(key)],
                                  env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not tcp_open("127.0.0.1", port):
            assert time.monotonic() < deadline and flower.poll() is None, log.read_text()
            time.sleep(0.2)
        trusted = ssl.create_default_context(cafile=str(cert))
        url = f"https://localhost:{port}/api/workers"

        # Then it answers over HTTPS (the certificate verified), only with the credentials
        assert get(url, context=trusted)[0] == 401
        assert get(url, f"admin:{password}x", context=trusted)[0] == 401
        assert get(url, f"admin:{password}", context=trusted)[0] == 200
        # and plain HTTP on that port gets no answer
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"http://localhost:{port}/api/workers", timeout=5)
        # and the password is on no command line of its process tree, nor in what it printed
        tree = [psutil.Process(flower.pid), *psutil.Process(flower.pid).children(recursive=True)]
        assert all(password not in " ".join(p.cmdline()) for p in tree)
        assert password not in log.read_text()
    finally:
        os.killpg(flower.pid, signal.SIGTERM)
        flower.wait(10)
        redis.stop()
    assert password not in log.read_text()


@pytest.mark.parametrize(("credential", "says"), [
    ("admin:pa,ss", "cannot contain ','"),
    ("admin:", "must both be non-empty"),
    (":s3cret-pass", "must both be non-empty"),
    ("admin-s3cret", "must be user:password"),
])
def test_a_credential_flower_cannot_use_is_refused_in_one_line_without_showing_it(
        tmp_path: Path, credential: str, says: str) -> None:
    # Given a FARM_FLOWER_AUTH that Flower would split on its comma, or with an empty user or password
    env = {"FARM_BROKER_URL": "redis://:x@127.0.0.1:1/0", "FARM_FLOWER_AUTH": credential}

    # When `farm flower` starts
    result = farm("flower", "--port", str(free_port()), cwd=tmp_path, env=env, timeout=60)

    # Then it stops before Flower does: exit 2, one line that says why, the password not echoed
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    secret = credential.partition(":")[2]
    assert not secret or secret not in result.stderr + result.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--address", "no-such-host.invalid"], "cannot resolve it"),
    (["--certfile", "cert.pem"], "--certfile and --keyfile go together"),
    (["--certfile", "missing.pem", "--keyfile", "missing-key.pem"], "no such file"),
])
def test_an_address_that_does_not_resolve_or_half_a_tls_pair_is_one_line_with_exit_2(
        tmp_path: Path, args: list[str], says: str) -> None:
    # Given a certificate file in the working folder (for the half-pair case)
    (tmp_path / "cert.pem").write_text("not used\n")

    # When / Then
    result = farm("flower", *args, cwd=tmp_path, env={"FARM_BROKER_URL": "redis://:x@127.0.0.1:1/0"}, timeout=60)
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
