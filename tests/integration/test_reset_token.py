"""Only the farm resets or reads a stack: its per-deployment token is required, directly and through the balancer."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("nginx_available")]


def status(url: str, method: str, token: str | None = None) -> int:
    headers = {"X-Farm-Token": token} if token is not None else {}
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(("stack", "params"), [("shop", {"architecture": "microservices"}), ("sleepy", {}),
                                               ("hello", {})])
def test_reset_and_metrics_refuse_anyone_without_the_deployments_token(tmp_path: Path, stack: str,
                                                                       params: dict[str, object]) -> None:
    # Given a built-in stack brought up by the farm
    folder = ROOT / "examples" / "stacks" / stack if stack == "hello" else ROOT / "stacks" / stack
    manifest = load_manifest(folder)
    driver = LocalDriver(tmp_path / "deployments")
    deployment = driver.up(manifest, {**manifest.defaults(), "instances": 1, **params}, "token")
    try:
        driver.ready(deployment, time.monotonic() + 60)
        assert deployment.token
        assert manifest.reset is not None and manifest.metrics is not None
        # When reset and metrics are asked without the token, with another, and with the deployment's own
        for base in {e.url for e in deployment.instances} | {deployment.entry_url}:  # directly and via the entry
            for method, path in (("POST", manifest.reset), ("GET", manifest.metrics)):
                # Then only the deployment's own token is let through
                assert status(base + path, method) == 403, (base, path)
                assert status(base + path, method, "guess") == 403, (base, path)
                assert 200 <= status(base + path, method, deployment.token) < 300, (base, path)
        # And the farm's own calls (which send it) work
        driver.reset(deployment)
        assert driver.metrics(deployment).warnings == ()
    finally:
        driver.down(deployment)
