"""Shared fixtures: paths, a CLI runner in a subprocess, and process-leak checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
FARM = [sys.executable, "-m", "farm"]


def stray_processes(marker: str) -> list[str]:
    """Command lines of live processes whose command line or working folder contains ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            where = f"{cmd} {proc.info['cwd'] or ''}"
            if marker in where and proc.info["status"] != psutil.STATUS_ZOMBIE and proc.pid != os.getpid():
                found.append(cmd)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working folder (farm.db and artefacts land here)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FARM_DATABASE_URL", raising=False)
    return tmp_path


def farm(*args: str, cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the `farm` CLI as a user would, in a subprocess.

    Cut short (its timeout, or pytest-timeout interrupting the test), it gets Ctrl-C first, as a user would
    press it: `farm run` then stops its local worker and stack, which a kill would leave running (the worker
    has a session of its own).
    """
    with subprocess.Popen([*FARM, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, **(env or {})}) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
