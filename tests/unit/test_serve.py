"""`farm serve`'s app on a real SQLite store: pages, the JSON API (the report's own document), the live channel
(only what changed), Locust reports from the artefacts folder only, basic auth, and the start-up checks."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from html import unescape
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from farm.commands.serve import checked
from farm.errors import SpecError
from farm.plan import Cell
from farm.report.build import report_json
from farm.settings import Settings
from farm.store.repository import Store
from farm.web.answer import Answer, Answers, Version, compute
from farm.web.app import make_app
from tests.webstore import land, planned


@pytest.fixture
def sweep(tmp_path: Path) -> tuple[Store, list[Cell]]:
    """A sweep under way: 9 of 12 cells done on lab-1, one running on lab-2, one failed, one pending."""
    store, cells = planned(tmp_path / "farm.db")
    for cell in cells[:9]:
        land(store, cell)
    store.mark_running(cells[9].id, {"name": "lab-2"})
    store.mark_running(cells[10].id, {"name": "lab-2"})
    store.record_failure([cells[10].id], "reset", "reset", "POST /farm/reset answered 500 on app-0")
    return store, cells


def client(store: Store, tmp_path: Path, **options: Any) -> TestClient:
    return TestClient(make_app(store, artefacts_dir=tmp_path / "artefacts", interval_s=0.05, **options))


def basic(credential: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_sweeps_page_lists_each_sweep_with_its_progress_and_failures(sweep: tuple[Store, list[Cell]],
                                                                         tmp_path: Path) -> None:
    store, _ = sweep
    with client(store, tmp_path) as web:
        page = web.get("/")
    assert page.status_code == 200
    row = text_of(page.text)
    assert "watched shop pending" in row
    assert re.search(r"watched shop pending\s+9 1 1 12", row), row  # done, failed, running, cells
    assert 'href="/sweeps/watched"' in page.text
    assert 'data-events="/events"' in page.text and "/static/live.js" in page.text
    assert "app;dur=" in page.headers["server-timing"]


def test_a_sweeps_page_shows_progress_hosts_failures_the_answer_in_the_reports_words_and_its_figures(
        sweep: tuple[Store, list[Cell]], tmp_path: Path) -> None:
    store, cells = sweep
    expected = report_json(store, "watched")
    with client(store, tmp_path) as web:
        web.get("/api/sweeps/watched")  # waits for the answer: the page then shows it
        page = web.get("/sweeps/watched")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "10/12 cells finished" in text and "done 9 · failed 1" in text
    running = f"architecture={cells[9].params['architecture']}, users={cells[9].users}"
    assert f"lab-2 0 1 0 1 0 0 {running}" in text  # lab-2's cells by status, and what it runs now
    assert "reset reset POST /farm/reset answered 500 on app-0" in text  # the failed cell, its stage and error
    for comparison in expected["comparisons"]:  # the verdict in the words of `farm report`
        assert comparison["description"] in text
    assert expected["cost_benefit"], "the sweep has an SLO: the report has its cost table"
    assert "What does switching cost? (cheapest configuration with p95 ≤ 40 ms, per load)" in text
    for entry in expected["cost_benefit"]:  # the cost table of issue 15, in its own words
        assert entry["description"] in text
        for point in entry["per_load"]:
            assert f"{entry['cache']} {point['load']} " in text and point["classification"] in text
            for arch in ("monolith", "microservices"):  # the sweep's price: money per million requests
                if point[arch] and point[arch]["cost"] is not None:
                    money = f"{point[arch]['per_million_requests']:.3g} EUR per million requests"
                    assert point[arch]["currency"] == "EUR" and money in text
    # the difference surface, the one comparison's p95 curves with their bands, the cost frontier
    assert page.text.count("<svg") == 3
    assert "Difference surface" in text and "cache none · 1 instance" in text
    assert "updating" not in text
    assert f"/sweeps/watched/cells/{cells[0].id}/locust.html" not in page.text  # no artefacts recorded: no link


def test_the_api_gives_progress_and_exactly_the_report_json(sweep: tuple[Store, list[Cell]], tmp_path: Path) -> None:
    store, _ = sweep
    with client(store, tmp_path) as web:
        answer = web.get("/api/sweeps/watched")
        missing = web.get("/api/sweeps/nope")
    assert answer.status_code == 200
    body = answer.json()
    assert body["report"] == json.loads(json.dumps(report_json(store, "watched")))
    progress = body["progress"]
    assert progress["counts"] == {"done": 9, "running": 1, "failed": 1, "pending": 1}
    assert progress["total"] == 12 and progress["finished"] is False
    assert progress["running"][0]["host"] == "lab-2"
    assert progress["failed"][0]["stage"] == "reset"
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_a_key_the_report_gains_appears_on_the_page_without_a_change_here(sweep: tuple[Store, list[Cell]],
                                                                          tmp_path: Path) -> None:
    # Given a report document with a part the page has no words of its own for (as the cost table once was)
    def with_new_part(store: Store, name: str, version: Version) -> Answer:
        answer = compute(store, name, version)
        table = [{"cache": "none", "outcome": "switch", "switch": {"at": 12.5, "low": 10, "high": 20}}]
        return replace(answer, document={**answer.document, "new_part": table})

    store, _ = sweep
    with client(store, tmp_path, answers=Answers(store, with_new_part)) as web:
        web.get("/api/sweeps/watched")
        text = text_of(web.get("/sweeps/watched").text)
    # Then it is shown as it is, under its own name
    assert "New part" in text
    assert "cache outcome switch none switch at 12.5 low 10 high 20" in text


def test_an_unknown_sweep_is_a_404_page_naming_it(sweep: tuple[Store, list[Cell]], tmp_path: Path) -> None:
    store, _ = sweep
    with client(store, tmp_path) as web:
        page = web.get("/sweeps/no-such")
    assert page.status_code == 404 and "No sweep named 'no-such'" in text_of(page.text)


async def events(app: Any, path: str, enough: Any, between: Any = None) -> list[dict[str, Any]]:
    """The `sections` events of the live channel at ``path``, read through the ASGI interface until
    ``enough(events)``; ``between(n)`` runs (in a thread) after the n-th event."""
    found: list[dict[str, Any]] = []
    done = anyio.Event()
    buffer = ""

    async def receive() -> dict[str, Any]:
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal buffer
        if message["type"] != "http.response.body":
            return
        buffer += message.get("body", b"").decode()
        while "\n\n" in buffer:
            event, buffer = buffer.split("\n\n", 1)
            if event.startswith("event: sections"):
                found.append(json.loads(event.split("data: ", 1)[1]))
                if between is not None:
                    await anyio.to_thread.run_sync(between, len(found))
                if enough(found):
                    done.set()

    path, _, query = path.partition("?")
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": query.encode(), "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80)}
    with anyio.fail_after(60):
        await app(scope, receive, send)
    return found


def test_the_live_channel_sends_only_the_sections_that_changed_as_a_cell_lands(
        sweep: tuple[Store, list[Cell]], tmp_path: Path) -> None:
    # Given a page as served, with the answer of its version
    store, cells = sweep
    app = make_app(store, artefacts_dir=tmp_path, interval_s=0.05)
    with TestClient(app) as web:
        web.get("/api/sweeps/watched")
        page = web.get("/sweeps/watched").text
    have = ",".join(f"{i}:{h}" for i, h in re.findall(r'<div id="([^"]+)" data-section data-hash="([^"]+)"', page))

    # When the page's live channel is open and a cell lands
    def land_one(n: int) -> None:
        if n == 1:
            land(store, cells[11], "lab-1", shift_ms=30)

    found = anyio.run(events, app, f"/sweeps/watched/events?have={have}", lambda found: "verdict" in found[-1],
                      land_one)

    # Then the first event is only what changed since the page was rendered (nothing of the answer's figures),
    assert set(found[0]) <= {"progress", "hosts", "cells"}, found[0].keys()
    # and then the landed cell's progress, and the answer brought up to date: its state, verdict and figures
    later = {k for event in found[1:] for k in event}
    assert {"progress", "hosts", "cells", "state", "verdict", "difference"} <= later
    assert any(k.startswith("curves-") for k in later)
    assert "updating" in json.dumps(found[1:-1]) and "updating" not in found[-1]["state"]["html"]
    assert all(v is None or v["html"] for event in found for v in event.values())


def test_a_cells_locust_report_is_served_from_the_artefacts_folder_only(sweep: tuple[Store, list[Cell]],
                                                                        tmp_path: Path) -> None:
    store, cells = sweep
    artefacts = tmp_path / "artefacts"
    report = artefacts / "watched" / cells[0].id / "locust.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>the Locust report</html>")
    escape = artefacts / "watched" / cells[1].id
    escape.mkdir(parents=True)
    (escape / "locust.html").symlink_to(tmp_path / "farm.db")  # a link out of the folder is not followed
    land(store, cells[0], artefacts=str(report.parent))
    land(store, cells[1], "lab-9", artefacts="/srv/far/away")
    with client(store, tmp_path) as web:
        served = web.get(f"/sweeps/watched/cells/{cells[0].id}/locust.html")
        elsewhere = web.get(f"/sweeps/watched/cells/{cells[1].id}/locust.html")
        unknown = web.get("/sweeps/watched/cells/0000/locust.html")
        listing = web.get("/sweeps/watched/cells")
    assert served.status_code == 200 and "the Locust report" in served.text
    assert elsewhere.status_code == 404 and "it ran on lab-9" in elsewhere.text and "/srv/far/away" in elsewhere.text
    assert unknown.status_code == 404
    assert listing.status_code == 200 and listing.text.count("locust.html") == 2  # every cell with artefacts


def test_with_a_credential_every_route_wants_basic_auth(sweep: tuple[Store, list[Cell]], tmp_path: Path) -> None:
    store, _ = sweep
    with client(store, tmp_path, auth=("admin", "s3cret:pass")) as web:
        for path in ("/", "/sweeps/watched", "/api/sweeps/watched", "/static/live.js", "/events"):
            refused = web.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
            assert web.get(path, headers=basic("admin:wrong")).status_code == 401
        assert web.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401
        assert web.get("/", headers=basic("admin:s3cret:pass")).status_code == 200


def lab(auth: str | None) -> Settings:
    return Settings(serve_auth=None if auth is None else SecretStr(auth))


def test_off_loopback_needs_a_credential_loopback_does_not() -> None:
    with pytest.raises(SpecError, match="without a password; set FARM_SERVE_AUTH=user:password"):
        checked(lab(None), address="0.0.0.0", port=5556, certfile=None, keyfile=None)
    assert checked(lab(None), address="localhost", port=5556, certfile=None, keyfile=None) == (None, None)
    assert checked(lab("admin:pa:ss"), address="0.0.0.0", port=5556, certfile=None, keyfile=None) == \
        (("admin", "pa:ss"), None)


@pytest.mark.parametrize(("credential", "says"), [
    ("adminpass", "must be user:password"), (":pass", "must both be non-empty"), ("admin:", "must both be non-empty"),
    ("admin:pa\nss", "control characters")])
def test_a_credential_that_cannot_work_is_refused_without_showing_it(credential: str, says: str) -> None:
    with pytest.raises(SpecError) as refused:
        checked(lab(credential), address="127.0.0.1", port=5556, certfile=None, keyfile=None)
    assert says in str(refused.value) and "FARM_SERVE_AUTH" in str(refused.value)
    assert "pass" not in str(refused.value).replace("password", "")


def test_a_bad_port_or_half_a_tls_pair_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="between 1 and 65535"):
        checked(lab(None), address="127.0.0.1", port=0, certfile=None, keyfile=None)
    with pytest.raises(SpecError, match="go together"):
        checked(lab(None), address="127.0.0.1", port=5556, certfile=tmp_path / "c.pem", keyfile=None)
