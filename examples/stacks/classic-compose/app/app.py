"""A small catalogue app: an item page read through a Redis cache (cache-aside), one per replica.

GET /item/N answers item N (computed on a miss, then cached in Redis for a minute); GET /healthz answers ok;
GET /metrics answers how many requests this replica served (the farm's per-replica count: it shows that nginx
balanced over every replica).
"""

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

CACHE = redis.Redis(host="redis", port=6379, socket_timeout=2)
SERVED = {"requests": 0}
LOCK = threading.Lock()


def item(number: str) -> bytes:
    """The item's page: from the cache, else computed (a little CPU) and cached."""
    key = f"item:{number}"
    cached = CACHE.get(key)
    if cached is not None:
        return cached
    page = json.dumps({"item": number, "digest": hashlib.sha256(number.encode() * 20000).hexdigest()}).encode()
    CACHE.set(key, page, ex=60)
    return page


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            body = b"ok"
        elif self.path == "/metrics":
            body = json.dumps({"requests": SERVED["requests"], "host": socket.gethostname()}).encode()
        elif self.path.startswith("/item/"):
            with LOCK:
                SERVED["requests"] += 1
            body = item(self.path.removeprefix("/item/"))
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("0.0.0.0", 80), Handler).serve_forever()
