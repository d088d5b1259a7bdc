"""Bounded waits on PostgreSQL: a database that went away is an error within seconds, never a hang.

A process talks to a real PostgreSQL server from a network namespace; then every packet between them is dropped
(iptables in the namespace: the server's host gone, or the network cut), once while a statement runs and once
when the next transaction connects. A server that accepts TCP and never answers, and the limits on a live
connection, are checked too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from farm.errors import StoreError
from farm.store.repository import Store
from tests.conftest import ROOT
from tests.integration.conftest import Postgres
from tests.integration.lab import Host, namespaces

pytestmark = pytest.mark.integration

CLIENT = """
import sys, time
from sqlalchemy import text
from farm.errors import StoreError
from farm.store.repository import Store

store = Store(sys.argv[1])
store.migrate()
store.sweeps()
for what, step in (("statement", lambda s: s.execute(text("SELECT pg_sleep(8)"))),
                   ("connect", lambda s: s.execute(text("SELECT 1")))):
    if what == "connect":
        store.engine.dispose()  # the next transaction opens a new connection
    print(what, flush=True)
    began = time.monotonic()
    try:
        with store.session() as s:
            step(s)
        print(f"{what} answered", flush=True)
    except StoreError as exc:
        print(f"{what} failed after {time.monotonic() - began:.1f} s: {exc}", flush=True)
"""


@pytest.fixture
def lab_host() -> Iterator[Host]:
    with namespaces(1) as hosts:
        yield hosts[0]


@pytest.mark.timeout(300)
def test_a_database_cut_off_mid_statement_and_at_connect_is_an_error_within_seconds(lab_host: Host) -> None:
    server = Postgres(listen=[lab_host.address]).start()
    try:
        server.create_database()
        client = subprocess.Popen(lab_host.command([sys.executable, "-c", CLIENT, server.url(lab_host.address)]),
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert client.stdout is not None
            # Given a client running a statement
            assert client.stdout.readline().strip() == "statement"
            time.sleep(1.0)
            # When every packet to and from the server is dropped
            for chain, way in (("OUTPUT", "--dport"), ("INPUT", "--sport")):
                subprocess.run(lab_host.command(["iptables", "-I", chain, "-p", "tcp", way, str(server.port),
                                                 "-j", "DROP"]), check=True)
            # Then the statement fails (keepalives: ~25 s), not after the kernel's 2 h default
            statement = client.stdout.readline().strip()
            assert statement.startswith("statement failed after "), statement
            assert float(statement.split()[3]) < 60, statement
            # And so does the next transaction's connect (connect_timeout: 10 s), not after SYN retries (~2 min)
            assert client.stdout.readline().strip() == "connect"
            connect = client.stdout.readline().strip()
            assert connect.startswith("connect failed after "), connect
            assert float(connect.split()[3]) < 30, connect
            print(statement, connect, sep="\n")  # the measured waits, with -s
        finally:
            client.kill()
            client.wait(10)
    finally:
        server.remove()


@pytest.mark.timeout(120)
def test_a_server_that_accepts_and_never_answers_is_an_error_within_the_connect_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=8) as silent:  # the kernel accepts; nobody answers
        store = Store(f"postgresql+psycopg://farm@127.0.0.1:{silent.getsockname()[1]}/farm")
        outcome: list[BaseException | float] = []

        def read() -> None:
            began = time.monotonic()
            try:
                store.sweeps()
            except StoreError as exc:
                outcome.append(exc)
            outcome.append(time.monotonic() - began)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(60)
        assert not reader.is_alive(), "the store waited for the silent server for a minute"
        assert isinstance(outcome[0], StoreError) and outcome[1] < 30, outcome


def test_a_live_connection_carries_the_bounds_and_the_url_overrides_them(postgres_url: str) -> None:
    store = Store(postgres_url)
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "1min"
        fd = conn.connection.driver_connection.pgconn.socket  # type: ignore[union-attr]
        with socket.socket(fileno=os.dup(fd)) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000
    custom = Store(f"{postgres_url}?options=-c%20statement_timeout%3D5000")
    with custom.engine.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "5s"
