"""Shared fixtures: paths, a CLI runner in a subprocess, and process-leak checks."""

from __future__ import annotations

import os
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
    """Run the `farm` CLI as a user would, in a subprocess."""
    return subprocess.run([*FARM, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
