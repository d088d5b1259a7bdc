"""The smallest stack that keeps the whole contract: a page, a health check, a reset and metrics (stdlib only).

Each instance caches its rendered page for `--cache-ttl` seconds (0: no cache) and counts hits and misses, so
the farm's hit-ratio figures have something to show.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog for a load test's clients."""

    # The standard library listens with a backlog of 5: with more clients connecting at once (every request is a
    # connection of its own here), the kernel drops their SYNs and they retry after 1 s, then 3 s — a p99 of
    # seconds on a 2 ms page, and users with no answer in a short window.
    request_queue_size = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--work-ms", type=float, default=2.0, help="CPU time to render the page on a miss")
    parser.add_argument("--cache-ttl", type=float, default=0.0, help="seconds a rendered page is reused")
    args = parser.parse_args()
    lock = threading.Lock()
    state = {"requests": 0, "hits": 0, "misses": 0, "rendered_at": -1.0}

    def render() -> bytes:
        end = time.process_time() + args.work_ms / 1000
        while time.process_time() < end:
            pass
        return b"<h1>hello</h1>"

    # The farm sends its token (one per deployment) with every reset and metrics request: refuse anyone else's.
    token = os.environ.get("LOADFARM_TOKEN", "")

    class Handler(BaseHTTPRequestHandler):
        def _from_farm(self) -> bool:
            if not token or hmac.compare_digest(self.headers.get("X-Farm-Token", ""), token):
                return True
            self._send(403, b"the farm's token is required", "text/plain")
            return False

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":  # health: any 2xx
                self._send(200, b"ok", "text/plain")
            elif self.path == "/metrics":  # metrics: a JSON object; every field optional
                if not self._from_farm():
                    return
                with lock:
                    doc = {"requests": state["requests"],
                           "cache": {"mode": "ttl" if args.cache_ttl else "none",
                                     "hits": state["hits"], "misses": state["misses"]}}
                self._send(200, json.dumps(doc).encode(), "application/json")
            else:
                with lock:
                    state["requests"] += 1
                    fresh = args.cache_ttl > 0 and time.monotonic() - state["rendered_at"] < args.cache_ttl
                    state["hits" if fresh else "misses"] += 1
                    if not fresh:
                        state["rendered_at"] = time.monotonic()
                body = b"<h1>hello</h1>" if fresh else render()
                self._send(200, body, "text/html")

        def do_POST(self) -> None:
            if self.path == "/admin/reset":  # reset: POST, any 2xx, body ignored
                if not self._from_farm():
                    return
                with lock:
                    state.update(requests=0, hits=0, misses=0, rendered_at=-1.0)
                self._send(204, b"", "text/plain")
            else:
                self._send(404, b"", "text/plain")

        def log_message(self, *_args: object) -> None:
            pass

    Server(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
