"""`farm serve` for real: headless Chromium watches a running sweep's page, sees a cell land and the figure change
without a reload; basic auth over HTTPS; refused off loopback without a credential; a PostgreSQL store."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from farm.stacks.probe import free_port, tcp_open
from tests.conftest import farm
from tests.integration.cdp import Browser
from tests.integration.test_flower import self_signed
from tests.webstore import land, planned

pytestmark = pytest.mark.integration


@contextmanager
def serving(folder: Path, env: dict[str, str], *args: str) -> Iterator[int]:
    """`farm serve` on a free port of loopback, as a user starts it; yields the port once it answers."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "farm", "serve", "--port", str(port), *args], cwd=folder,
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not tcp_open("127.0.0.1", port):
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def get(url: str, auth: str | None = None, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=60, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)
    return value


PAGE_STATE = """JSON.stringify({
  progress: document.getElementById("progress").textContent.replace(/\\s+/g, " "),
  state: document.getElementById("state").textContent,
  curves: Array.from(document.querySelectorAll("[id^=curves-] svg")).map(s => s.innerHTML).join(""),
  cells: document.getElementById("cells").querySelectorAll("tr").length,
  stayed: window.__stayed === true,
})"""


def test_chromium_sees_a_cell_land_and_the_figure_change_without_a_reload(tmp_path: Path) -> None:
    # Given a sweep under way in the store: 8 of 12 cells done, one running on lab-2
    store, cells = planned(tmp_path / "farm.db")
    for cell in cells[:8]:
        land(store, cell)
    store.mark_running(cells[8].id, {"name": "lab-2"})
    env = {"FARM_DATABASE_URL": f"sqlite:///{tmp_path / 'farm.db'}"}
    with serving(tmp_path, env) as port:
        browser = Browser(tmp_path / "chrome")
        try:
            # When headless Chromium opens the sweep's page and its answer is drawn
            browser.open(f"http://127.0.0.1:{port}/sweeps/watched")

            def page() -> dict[str, Any] | None:
                raw = browser.evaluate(f"document.getElementById('progress') && {PAGE_STATE}")
                return json.loads(raw) if raw else None

            before = wait_for(lambda: (p := page()) and p["curves"] and "Answer from 8" in p["state"] and p,
                              60, "the page with its answer")
            assert "8/12 cells finished" in before["progress"]
            browser.evaluate("window.__stayed = true")  # a reload would lose it

            # And the running cell lands, slower than the others were
            land(store, cells[8], "lab-2", shift_ms=60.0)

            # Then the page shows it, and the figure changes, without a reload
            after = wait_for(lambda: (p := page()) and "Answer from 9" in p["state"] and p, 60,
                             "the landed cell in the answer")
            assert "9/12 cells finished" in after["progress"]
            assert after["curves"] != before["curves"]
            assert after["stayed"], "the page reloaded"
            assert browser.errors() == []
        finally:
            browser.close()


def test_off_loopback_without_a_credential_it_refuses_to_start(tmp_path: Path) -> None:
    result = farm("serve", "--address", "0.0.0.0", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: farm serve would listen on 0.0.0.0 without a password; "
                                     "set FARM_SERVE_AUTH=user:password")
    assert not (tmp_path / "farm.db").exists()  # refused before the store is opened


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = farm("serve", "--port", str(port), cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: --address 127.0.0.1 --port {port}: cannot listen there "
                                     "(Address already in use); choose another --port")


def test_https_with_basic_auth_and_the_password_off_its_command_line(tmp_path: Path) -> None:
    # Given a store, a self-signed certificate and a credential
    store, cells = planned(tmp_path / "farm.db")
    land(store, cells[0])
    cert, key = self_signed(tmp_path)
    password = "pa:ss w0rd-" + os.urandom(4).hex()
    env = {"FARM_DATABASE_URL": f"sqlite:///{tmp_path / 'farm.db'}", "FARM_SERVE_AUTH": f"admin:{password}"}
    trusted = ssl.create_default_context(cafile=str(cert))
    # When farm serve runs with them
    with serving(tmp_path, env, "--address", "localhost", "--certfile", str(cert), "--keyfile", str(key)) as port:
        url = f"https://localhost:{port}/"
        # Then it answers over HTTPS, only with the credential
        assert get(url, context=trusted)[0] == 401
        assert get(url, f"admin:{password}x", context=trusted)[0] == 401
        status, body = get(url, f"admin:{password}", context=trusted)
        assert status == 200 and "watched" in body
    assert password not in (tmp_path / f"serve-{port}.log").read_text()


def test_the_api_on_a_postgresql_store_gives_exactly_the_report_json(tmp_path: Path, postgres_url: str) -> None:
    # Given a sweep in a PostgreSQL store
    store, cells = planned(postgres_url, "served-pg")
    for cell in cells[:6]:
        land(store, cell)
    env = {"FARM_DATABASE_URL": postgres_url}
    # When its JSON is asked of farm serve, and its report of farm report
    with serving(tmp_path, env) as port:
        status, body = get(f"http://127.0.0.1:{port}/api/sweeps/served-pg")
        page_status, page = get(f"http://127.0.0.1:{port}/sweeps/served-pg")
    report = farm("report", "served-pg", "--format", "json", cwd=tmp_path, env=env, timeout=120)
    # Then the two documents are the same
    assert status == 200 and report.returncode == 0, report.stderr
    served = json.loads(body)
    assert served["report"] == json.loads(report.stdout)
    assert served["progress"]["counts"] == {"done": 6, "pending": 6}
    assert page_status == 200 and "6/12 cells finished" in " ".join(page.split())
