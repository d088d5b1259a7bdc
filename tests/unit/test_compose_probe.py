"""The contract's requests from inside a project's network (#17 item 3): the probe's curl commands, run here.

The SUT host's `docker exec PROBE ...` is stood in for by running the same command on this machine, with the
probe's environment (the token): the curl commands and the reading of their answers are what is tested; the
integration test (test_byoc_compose) runs them in the real probe container.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from farm.stacks import contract
from farm.stacks.compose_probe import ProbeHttp
from farm.stacks.driver import TOKEN_HEADER, Endpoint

PROBE = "p-farm-probe-1"


@dataclass
class Output:
    code: int
    stdout: str
    stderr: str


class HereAsInTheProbe:
    """A RemoteShell whose `docker exec PROBE argv` runs argv here, with the probe's environment."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.commands: list[list[str]] = []

    def run(self, argv: Sequence[str], *, timeout: float = 60.0, check: bool = True,
            env: Mapping[str, str] | None = None) -> Output:
        assert list(argv[:3]) == ["docker", "exec", PROBE], argv
        self.commands.append(list(argv))
        done = subprocess.run(list(argv[3:]), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "LOADFARM_TOKEN": self.token})
        return Output(done.returncode, done.stdout, done.stderr)


@pytest.fixture()
def server() -> Iterator[tuple[int, list[tuple[str, str, str | None]]]]:
    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(("GET", self.path, self.headers.get(TOKEN_HEADER)))
            status, body = {"/health": (200, b"ok"), "/metrics": (200, b'{"cache": {"hits": 3, "misses": 1}}'),
                            "/text": (200, b"not json")}.get(self.path, (500, b"no"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            seen.append(("POST", self.path, self.headers.get(TOKEN_HEADER)))
            self.send_response(204 if self.path == "/reset" else 403)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_replica_inside_the_projects_network_is_checked_reset_and_read_from_the_probe(server: tuple) -> None:
    port, seen = server
    conn = HereAsInTheProbe(token="s3cret")
    http = ProbeHttp(conn, {})
    inside = Endpoint("app", 1, "127.0.0.1", port, via=PROBE)
    gone = Endpoint("app", 2, "127.0.0.1", closed_port(), via=PROBE)
    # When the farm probes health, resets and reads metrics of replicas it reaches from the probe
    answered = http.answering([inside, gone], "/health", 2.0)
    http.post(inside, "/reset", 2.0, {TOKEN_HEADER: "s3cret"})
    [doc, lost] = http.documents([inside, gone], "/metrics", 2.0, {TOKEN_HEADER: "s3cret"})
    # Then only the listening one answered, in one command for both
    assert answered == {inside} and len(conn.commands) == 3
    # And the reset was a POST and the metrics the document (both read in one command, the lost one refused),
    # both carrying the token, which no command line held
    assert doc == {"cache": {"hits": 3, "misses": 1}} and isinstance(lost, ConnectionRefusedError)
    assert ("POST", "/reset", "s3cret") in seen and ("GET", "/metrics", "s3cret") in seen
    assert not [c for c in conn.commands if any("s3cret" in word for word in c)]


def test_the_probes_failures_read_as_the_direct_requests_failures(server: tuple) -> None:
    port, _seen = server
    http = ProbeHttp(HereAsInTheProbe(token=""), {})
    inside = Endpoint("app", 0, "127.0.0.1", port, via=PROBE)
    [missing] = http.documents([inside], "/missing", 2.0, {})
    assert isinstance(missing, OSError) and "answered 500" in str(missing)
    with pytest.raises(OSError, match="answered 403"):
        http.post(inside, "/elsewhere", 2.0, {})
    [text] = http.documents([inside], "/text", 2.0, {})
    assert isinstance(text, json.JSONDecodeError)
    # And nothing listening is a refused connection, which the contract reads as a replica that died
    [gone] = http.documents([Endpoint("app", 0, "127.0.0.1", closed_port(), via=PROBE)], "/metrics", 2.0, {})
    assert isinstance(gone, ConnectionRefusedError)


def test_the_contract_reads_every_replica_the_probe_reaches_and_the_published_ones_directly(server: tuple,
                                                                                            tmp_path: object) -> None:
    from pathlib import Path

    from farm.stacks.driver import Deployment
    from farm.stacks.manifest import load_manifest

    port, seen = server
    manifest = load_manifest(Path(__file__).resolve().parents[2] / "examples" / "stacks" / "classic-compose")
    manifest = manifest.model_copy(update={"metrics": "/metrics", "reset": "/reset", "health": "/health"})
    entry = Endpoint("web", 0, "127.0.0.1", port)
    replicas = [Endpoint("app", 0, "127.0.0.1", port, via=PROBE), Endpoint("app", 1, "127.0.0.1", port)]
    deployment = Deployment("p", manifest, {}, entry, [*replicas, entry], Path(str(tmp_path)),
                            instance_services=frozenset({"app"}), token="s3cret")
    conn = HereAsInTheProbe(token="s3cret")
    http = ProbeHttp(conn, {})
    assert contract.check_instances(deployment, http) == 2
    contract.reset(deployment, http)
    metrics = contract.metrics(deployment, http)
    assert (metrics.cache_hits, metrics.cache_misses) == (6, 2) and not metrics.warnings
    # one command for each of the inside replica's health, reset and metrics; the others went directly
    assert len(conn.commands) == 3 and seen.count(("POST", "/reset", "s3cret")) == 2
