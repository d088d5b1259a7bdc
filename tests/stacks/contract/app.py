"""A stack that keeps or breaks the stack contract on purpose, one way per --mode (stdlib only)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("good", "text_reset", "metrics_list", "metrics_string", "metrics_flat", "metrics_text", "reset_close",
         "exit_early", "die_midway")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="good")
    args = parser.parse_args()
    if args.mode == "exit_early":
        print("exiting on purpose right after start", flush=True)
        sys.exit(3)
    state = {"requests": 0}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b"up", "text/plain")
            elif self.path == "/metrics":
                doc: object = {"requests": state["requests"], "cache": {"hits": 1, "misses": 2}}
                # metrics_flat: a stack written before the contract, its cache named by a string
                doc = {"metrics_list": [1, 2, 3], "metrics_string": "all good",
                       "metrics_flat": {"requests": state["requests"], "cache": "redis", "hits": 4}}.get(args.mode, doc)
                if args.mode == "metrics_text":
                    self._send(200, b"requests 12\ncache_hits 3\n", "text/plain")  # Prometheus-like text
                else:
                    self._send(200, json.dumps(doc).encode())
            else:
                state["requests"] += 1
                if args.mode == "die_midway" and state["requests"] == 50:
                    os._exit(9)  # the stack dies under a running cell, as an OOM kill would
                self._send(200, b"hello", "text/plain")

        def do_POST(self) -> None:
            if args.mode == "reset_close":
                self.close_connection = True
                self.connection.shutdown(2)  # no response at all
                return
            state["requests"] = 0
            self._send(200, b"ok", "text/plain")  # plain text: the farm must ignore the body

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
