"""Flower on the farm's Celery app: its API answers with basic auth, lists workers and tasks, refuses without."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from farm.stacks.probe import free_port, tcp_open
from tests.conftest import farm
from tests.integration.conftest import require
from tests.integration.lab import Host, Redis, Worker

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]


def get(url: str, auth: str | None = None) -> tuple[int, object]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
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
