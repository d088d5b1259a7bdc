"""Small HTTP and TCP probes the drivers use for health, metrics and cache resets (stdlib only)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether GET url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def http_json(url: str, method: str = "GET", timeout: float = 5.0) -> Any:
    """The JSON body of a request; raises OSError on failure."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
