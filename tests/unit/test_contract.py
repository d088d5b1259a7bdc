"""The stack contract's metrics, deployment names, the children's environment, and writes without symlinks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from farm import files
from farm.environment import child_environment, scrubbed_environ
from farm.errors import ProvisionError, SpecError
from farm.stacks.driver import Deployment, Endpoint, Unreadable, check_deployment_name, read_metrics
from farm.stacks.local import STATE_FILE, LocalDriver

LABEL = [{"service": "app", "replica": 0}]


def test_metrics_fields_are_all_optional_and_summed_over_instances() -> None:
    docs = [("app#0", {"cache": {"hits": 3, "misses": 1}, "requests": 4}), ("app#1", {"cache": {"hits": 2}})]
    metrics = read_metrics(docs, LABEL * 2)
    assert (metrics.cache_hits, metrics.cache_misses) == (5, 1)
    assert read_metrics([("app#0", {})], LABEL).cache_hits is None
    assert read_metrics([("app#0", {"cache": {"mode": "none", "hits": 9}})], LABEL).cache_hits is None


@pytest.mark.parametrize(("doc", "words", "hits", "requests_known"), [
    ([1, 2], "expected a JSON object, got a list", None, False),
    ("ok", "expected a JSON object, got a string", None, False),
    (None, "expected a JSON object, got null", None, False),
    (Unreadable("GET failed: timed out"), "unreadable: GET failed: timed out", None, False),
    ({"cache": "redis", "requests": 5}, "'cache' must be an object, got a string; hit ratio left empty", None, True),
    ({"cache": {"hits": "many"}}, "'hits' must be a whole number ≥ 0, got a string", None, True),
    ({"cache": {"misses": -1}}, "'misses' must be a whole number ≥ 0, got -1", None, True),
    ({"requests": True, "cache": {"hits": 1, "misses": 1}}, "'requests' must be a whole number ≥ 0, got a boolean",
     2, False),
])
def test_a_metrics_document_that_breaks_the_contract_warns_naming_instance_url_and_field(
        doc: object, words: str, hits: int | None, requests_known: bool) -> None:
    # Given a good instance and one whose document breaks the contract
    good = ("app#1 (http://127.0.0.1:2/metrics)", {"cache": {"hits": 1, "misses": 1}, "requests": 3})
    # When they are read together
    metrics = read_metrics([good, ("app#0 (http://127.0.0.1:1/metrics)", doc)], LABEL * 2)
    # Then nothing is raised: one warning names the instance, its URL and the field; the figures it affects
    # are empty (a partial sum over instances would be wrong), the others kept
    [warning] = metrics.warnings
    assert warning.startswith("metrics of app#0 (http://127.0.0.1:1/metrics): ") and words in warning
    assert metrics.cache_hits == hits and metrics.requests_known is requests_known
    assert len(metrics.raw) == 2


def test_warnings_of_both_window_edges_are_kept_once() -> None:
    bad = [("app#0 (u)", {"cache": "redis"})]
    start, end = read_metrics(bad, LABEL), read_metrics(bad, LABEL)
    assert end.minus(start).warnings == start.warnings and len(start.warnings) == 1


def test_metrics_that_never_answer_or_are_not_json_give_a_warning_within_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    from farm.stacks import contract
    from farm.stacks.manifest import StackManifest

    # Given one instance that accepts connections and never answers, and one that answers text
    silent = socket.create_server(("127.0.0.1", 0))
    text = _serve(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nrequests 12\n")
    monkeypatch.setattr(contract, "METRICS_TIMEOUT_S", 0.5)
    manifest = StackManifest.model_validate({"name": "t", "locustfile": "x.py", "metrics": "/metrics",
                                             "local": {"entry": "app", "services": [{"name": "app",
                                                                                     "command": ["x"]}]}})
    endpoints = [Endpoint("app", 0, "127.0.0.1", silent.getsockname()[1]), Endpoint("app", 1, "127.0.0.1", text)]
    deployment = Deployment("d", manifest, {}, endpoints[0], endpoints, Path("."), instance_services=frozenset({"app"}))
    try:
        # When the farm reads their metrics
        started = time.monotonic()
        metrics = contract.metrics(deployment)
        # Then each gives a warning (no exception), within the 0.5 s timeout set here, not the default 5 s (a bound
        # that only a busy machine's scheduling could come near, not a timing of the read)
        assert time.monotonic() - started < 4.5
        assert [w.split(": ")[1] for w in metrics.warnings] == ["unreadable", "unreadable"], metrics.warnings
        assert "timed out" in metrics.warnings[0] and "not JSON" in metrics.warnings[1]
        assert metrics.cache_hits is None and not metrics.requests_known
    finally:
        silent.close()


def _serve(answer: bytes) -> int:
    """A listener that answers every connection with ``answer`` and closes it; returns its port."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(answer)

    threading.Thread(target=loop, daemon=True).start()
    return int(server.getsockname()[1])


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x\ny", "a..b", "-x", "x" * 200])
def test_deployment_names_with_separators_or_dots_are_refused(name: str) -> None:
    with pytest.raises(SpecError):
        check_deployment_name(name)


def test_children_get_no_farm_or_flower_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_DATABASE_URL", "postgresql://u:secret@db/farm")
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:secret")
    monkeypatch.setenv("farm_lowercase", "secret")
    env = child_environment({"PYTHONUNBUFFERED": "1", "FARM_X": "smuggled"})
    assert env["PYTHONUNBUFFERED"] == "1" and "PATH" in env
    assert not [k for k in env if k.upper().startswith(("FARM_", "FLOWER_"))]
    with scrubbed_environ():
        child = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps(list(os.environ)))"],
                               capture_output=True, text=True, check=True)
    assert not [k for k in json.loads(child.stdout) if k.upper().startswith(("FARM_", "FLOWER_"))]
    assert os.environ["FARM_DATABASE_URL"].endswith("@db/farm")  # restored afterwards


def test_files_are_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("precious")
    (tmp_path / "log").symlink_to(target)
    with pytest.raises(ProvisionError, match="symlink"):
        files.write_text(tmp_path / "log", "overwritten")
    with pytest.raises(ProvisionError, match="symlink"):
        files.open_log(tmp_path / "log")
    (tmp_path / "dir").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ProvisionError, match="symlink"):
        files.private_dir(tmp_path / "dir")
    assert target.read_text() == "precious"


def test_start_up_cleanup_stops_only_deployments_whose_owner_is_gone(tmp_path: Path) -> None:
    # Given two recorded deployments: one owned by this (live) process, one by a process that has exited
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_identity = {"pid": dead.pid, "created": 0.0}
    dead.wait()
    sleepers = {}
    for name, owner in (("live", LocalDriver(tmp_path).owner), ("orphan", dead_identity)):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
        sleepers[name] = proc
        (tmp_path / name).mkdir()

        (tmp_path / name / STATE_FILE).write_text(json.dumps({"owner": owner, "procs": [
            {"pid": proc.pid, "created": psutil.Process(proc.pid).create_time()}]}))
    try:
        # When a worker starts and cleans up
        stopped = LocalDriver(tmp_path).clean_dead()
        # Then only the orphan's processes were stopped
        assert stopped == 1
        assert sleepers["orphan"].wait(5) is not None
        assert sleepers["live"].poll() is None
    finally:
        for proc in sleepers.values():
            proc.kill()
            proc.wait()


def test_a_recorded_pid_now_naming_another_process_is_not_killed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / STATE_FILE).write_text(json.dumps({"owner": None, "procs": [
            {"pid": proc.pid, "created": 12345.0}]}))  # another start time: the pid was reused
        assert LocalDriver(tmp_path).clean("d") == 0
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_health_probe_answered_by_something_that_is_not_http_is_simply_not_ok() -> None:
    import socket
    import threading

    from farm.stacks.probe import http_ok

    # Given a listener that answers every connection with a line that is no HTTP status line
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        # When the health probe asks it, then the answer is "not ok", not an exception
        assert http_ok(f"http://127.0.0.1:{port}/healthz", timeout=2.0) is False
    finally:
        thread.join(5)
        server.close()
