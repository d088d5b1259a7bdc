"""The reference shop: one HTTP API served as a monolith or as a gateway plus three services.

Run one instance per role:  python shop.py --role monolith|gateway|catalog|pricing|cart --port P [...]
``--processes N`` runs the instance as N worker processes sharing its port and its state (see pool.py): the
monolith's equal CPU budget. Loadfarm never imports this file; it starts it from the recipe (stack.yaml).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import random
import shutil
import socket
import sqlite3
import tempfile
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from pool import Counters, serve

PRODUCTS = 2000
REVIEWS_PER_PRODUCT = 8
PAGE_SIZE = 20
WORDS = ("fast", "solid", "cheap", "great", "poor", "blue", "steel", "light", "heavy", "smart", "eco", "pro")


# ----------------------------------------------------------------------------------------------- work
def burn(ms: float) -> None:
    """Spend ``ms`` of this thread's CPU time (not wall time) on real hashing: the cost of a cache miss."""
    if ms <= 0:
        return
    end = time.thread_time() + ms / 1000.0
    digest = b"loadfarm"
    while time.thread_time() < end:
        for _ in range(50):
            digest = hashlib.sha256(digest).digest()


def dumps(obj: Any) -> bytes:
    """Serialise a response body."""
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------- cache
class Cache:
    """`none`, `local` (an LRU with TTL in this process) or `shared` (one Redis for every instance).

    Hits, misses and entries are counted in this worker's slot of the instance's shared counters.
    """

    def __init__(self, mode: str, capacity: int, ttl: float, redis_url: str | None, prefix: str,
                 counters: Counters) -> None:
        self.mode, self.capacity, self.ttl, self.prefix = mode, max(0, capacity), ttl, prefix
        self.counters = counters
        self.lru: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.redis: Any = None
        if mode == "shared":
            import redis.asyncio as aioredis

            if not redis_url:
                raise SystemExit("--redis-url is required with --cache shared")
            self.redis = aioredis.from_url(redis_url)

    async def get(self, key: str) -> bytes | None:
        if self.mode == "none":
            return None
        value: bytes | None = None
        if self.mode == "local":
            item = self.lru.get(key)
            if item is not None and item[0] > time.monotonic():
                self.lru.move_to_end(key)
                value = item[1]
            elif item is not None:
                del self.lru[key]
                self.counters.set("entries", len(self.lru))
        else:
            value = await self.redis.get(self.prefix + key)
        self.counters.add("misses" if value is None else "hits")
        return value

    async def put(self, key: str, value: bytes) -> None:
        if self.mode == "local" and self.capacity:
            self.lru[key] = (time.monotonic() + self.ttl, value)
            self.lru.move_to_end(key)
            while len(self.lru) > self.capacity:
                self.lru.popitem(last=False)
            self.counters.set("entries", len(self.lru))
        elif self.mode == "shared":
            await self.redis.set(self.prefix + key, value, ex=max(1, int(self.ttl)))

    def forget(self) -> None:
        """Empty this process's LRU (a reset asked by any worker of the instance)."""
        self.lru.clear()
        self.counters.set("entries", 0)

    async def clear(self) -> None:
        """Empty this process's LRU and the shared cache."""
        self.forget()
        if self.redis is not None:
            await self.redis.flushdb()

    def stats(self) -> dict[str, Any]:
        """The instance's cache counters, summed over its workers."""
        total = self.counters.total
        return {"mode": self.mode, "hits": total("hits"), "misses": total("misses"),
                "entries": total("entries") if self.mode == "local" else None,
                "capacity": self.capacity * self.counters.workers}


# ------------------------------------------------------------------------------------------------ data
def open_database(tables: set[str]) -> sqlite3.Connection:
    """Read-only data (catalog, pricing) in memory, generated deterministically: every instance holds the same."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.row_factory = sqlite3.Row
    if "catalog" in tables:
        rnd = random.Random("catalog")
        db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, description TEXT)")
        db.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INT, stars INT, body TEXT)")
        db.execute("CREATE INDEX reviews_product ON reviews(product_id)")
        for pid in range(1, PRODUCTS + 1):
            words = " ".join(rnd.choice(WORDS) for _ in range(30))
            db.execute("INSERT INTO products VALUES (?,?,?,?)",
                       (pid, f"Product {pid}", f"cat-{pid % 25}", words))
            db.executemany("INSERT INTO reviews (product_id, stars, body) VALUES (?,?,?)",
                           [(pid, rnd.randint(1, 5), " ".join(rnd.choice(WORDS) for _ in range(25)))
                            for _ in range(REVIEWS_PER_PRODUCT)])
    if "pricing" in tables:
        rnd = random.Random("pricing")
        db.execute("CREATE TABLE prices (product_id INTEGER PRIMARY KEY, cents INT, stock INT, warehouse TEXT)")
        db.executemany("INSERT INTO prices VALUES (?,?,?,?)",
                       [(pid, rnd.randint(199, 99999), rnd.randint(0, 500), f"wh-{pid % 7}")
                        for pid in range(1, PRODUCTS + 1)])
    db.commit()
    return db


def copy_of(image: bytes) -> sqlite3.Connection:
    """A private in-memory copy of a database serialised by the parent (built once, not once per worker)."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    if image:
        db.deserialize(image)
    db.row_factory = sqlite3.Row
    return db


def create_carts(path: Path) -> None:
    """The instance's carts and orders: one SQLite file (WAL) that every worker of the instance writes."""
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE cart_items (session TEXT, product_id INT, qty INT, cents INT)")
        db.execute("CREATE INDEX cart_session ON cart_items(session)")
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, session TEXT, total_cents INT, digest TEXT)")
        db.commit()


def open_carts(path: Path) -> sqlite3.Connection:
    """This worker's connection to the instance's carts (autocommit; explicit transactions where it matters)."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous=OFF")  # carts need not survive a crash of the host: no fsync per request
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on the carts, taken at once so that concurrent workers queue instead of failing."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def product_details(db: sqlite3.Connection, pid: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM products WHERE id = ?", (pid,)).fetchone()
    if row is None:
        return None
    reviews = [dict(r) for r in db.execute(
        "SELECT stars, body FROM reviews WHERE product_id = ? ORDER BY id", (pid,))]
    avg = db.execute("SELECT AVG(stars) FROM reviews WHERE product_id = ?", (pid,)).fetchone()[0]
    return {**dict(row), "rating": round(avg, 2), "reviews": reviews}


def price_of(db: sqlite3.Connection, pid: int) -> dict[str, Any] | None:
    row = db.execute("SELECT * FROM prices WHERE product_id = ?", (pid,)).fetchone()
    return dict(row) if row is not None else None


def catalog_page(db: sqlite3.Connection, page: int) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT p.id, p.name, p.category, COUNT(r.id) AS reviews, AVG(r.stars) AS rating "
        "FROM (SELECT * FROM products ORDER BY id LIMIT ? OFFSET ?) p "
        "JOIN reviews r ON r.product_id = p.id GROUP BY p.id ORDER BY p.id",
        (PAGE_SIZE, (page - 1) * PAGE_SIZE))
    return [dict(r) for r in rows]


def record_order(db: sqlite3.Connection, session: str, checkout_ms: float) -> dict[str, Any]:
    """Turn a session's cart into an order."""
    # Payment, fraud checks, invoice rendering: the slow endpoint. Spent before the write transaction, so the
    # instance's other workers can write carts meanwhile.
    burn(checkout_ms)
    with transaction(db):
        items = [dict(r) for r in db.execute("SELECT * FROM cart_items WHERE session = ?", (session,))]
        total = sum(i["qty"] * i["cents"] for i in items)
        digest = hashlib.sha256(dumps(items)).hexdigest()
        cur = db.execute("INSERT INTO orders (session, total_cents, digest) VALUES (?,?,?)",
                         (session, total, digest))
        db.execute("DELETE FROM cart_items WHERE session = ?", (session,))
    return {"order": cur.lastrowid, "items": len(items), "total_cents": total}


# ------------------------------------------------------------------------------------------- services
TABLES = {"monolith": {"catalog", "pricing"}, "catalog": {"catalog"}, "pricing": {"pricing"}, "cart": set(),
          "gateway": set()}
KEEPS_CARTS = {"monolith", "cart"}


class Shop:
    """One worker process of a shop instance in a given role: its data, its cache, its view of the counters."""

    def __init__(self, args: argparse.Namespace, counters: Counters, data: bytes, carts: Path | None) -> None:
        self.args = args
        self.role: str = args.role
        self.counters = counters
        self.started = time.time()
        self.db = copy_of(data)
        self.carts = open_carts(carts) if carts is not None else None
        # The cache budget is per instance: the microservices split it between their two caching services, a
        # monolith instance between its worker processes (one LRU each: a per-process cache, as in each service).
        share = args.cache_size if self.role == "monolith" else args.cache_size // 2
        capacity = max(1, share // counters.workers) if share else 0
        self.cache = Cache(args.cache, capacity, args.cache_ttl, args.redis_url, prefix=f"{self.role}:",
                           counters=counters)
        self.backends = {name: itertools.cycle(urls) for name, urls in _backends(args.backend).items()}
        self.backend_lists = _backends(args.backend)
        self.http: ClientSession | None = None

    # -- plumbing
    async def start(self, _app: web.Application) -> None:
        if self.backend_lists:
            self.http = ClientSession(connector=TCPConnector(limit=0, keepalive_timeout=30),
                                      timeout=ClientTimeout(total=30))
        self.counters.mark_ready()

    async def stop(self, _app: web.Application) -> None:
        if self.http is not None:
            await self.http.close()

    async def call(self, service: str, method: str, path: str, *, sticky: str | None = None,
                   body: Any = None) -> tuple[int, bytes]:
        assert self.http is not None
        urls = self.backend_lists[service]
        base = urls[zlib.crc32(sticky.encode()) % len(urls)] if sticky else next(self.backends[service])
        async with self.http.request(method, base + path, data=None if body is None else dumps(body)) as resp:
            return resp.status, await resp.read()

    async def cached(self, key: str, compute: Any, work_ms: float) -> bytes | None:
        hit = await self.cache.get(key)
        if hit is not None:
            return hit
        value = compute()
        if value is None:
            return None
        burn(work_ms)  # rendering, enrichment, serialisation of a fresh page
        body = dumps(value)
        await self.cache.put(key, body)
        return body

    # -- handlers shared by every role
    def obey_reset(self) -> None:
        """Start afresh if any worker of the instance was reset since this one last looked."""
        if self.counters.obey_reset():
            self.cache.forget()

    async def healthz(self, _req: web.Request) -> web.Response:
        # Healthy once every worker serves: the instance is ready with its whole CPU budget, not part of it.
        ready = self.counters.all_ready()
        return web.json_response({"status": "ok" if ready else "starting", "role": self.role,
                                  "port": self.args.port, "processes": self.counters.workers},
                                 status=200 if ready else 503)

    async def metrics(self, _req: web.Request) -> web.Response:
        workers = [self.counters.slot(w) for w in range(self.counters.workers)]
        return web.json_response({
            "role": self.role, "port": self.args.port, "requests": self.counters.total("requests"),
            "cache": self.cache.stats(), "cpu_s": self.counters.cpu_seconds(),
            "uptime_s": time.time() - self.started, "processes": self.counters.workers,
            "workers": [{k: w[k] for k in ("pid", "requests", "hits", "misses", "entries")} for w in workers],
        })

    async def reset(self, _req: web.Request) -> web.Response:
        self.counters.request_reset()  # every other worker obeys before its next request
        self.obey_reset()
        await self.cache.clear()
        if self.carts is not None:
            with transaction(self.carts):
                self.carts.execute("DELETE FROM cart_items")
                self.carts.execute("DELETE FROM orders")
        return web.json_response({"reset": True})

    # -- monolith
    async def m_product(self, req: web.Request) -> web.Response:
        pid = int(req.match_info["pid"])

        def page() -> dict[str, Any] | None:
            details = product_details(self.db, pid)
            return None if details is None else {**details, **(price_of(self.db, pid) or {})}

        return _reply(await self.cached(f"product:{pid}", page, self.args.work_ms))

    async def m_catalog(self, req: web.Request) -> web.Response:
        page = max(1, int(req.query.get("page", "1")))
        return _reply(await self.cached(f"catalog:{page}", lambda: catalog_page(self.db, page),
                                        self.args.work_ms))

    async def m_cart_add(self, req: web.Request) -> web.Response:
        item = await req.json()
        price = price_of(self.db, int(item["product_id"]))
        if price is None:
            raise web.HTTPNotFound()
        return web.json_response(self._add_item(req.match_info["session"], item, price["cents"]))

    async def m_cart_view(self, req: web.Request) -> web.Response:
        return web.json_response(self._cart(req.match_info["session"]))

    async def m_checkout(self, req: web.Request) -> web.Response:
        assert self.carts is not None
        return web.json_response(record_order(self.carts, req.match_info["session"], self.args.checkout_ms))

    def _add_item(self, session: str, item: dict[str, Any], cents: int) -> dict[str, Any]:
        assert self.carts is not None
        self.carts.execute("INSERT INTO cart_items VALUES (?,?,?,?)",
                           (session, int(item["product_id"]), int(item.get("qty", 1)), cents))
        return self._cart(session)

    def _cart(self, session: str) -> dict[str, Any]:
        assert self.carts is not None
        items = [dict(r) for r in self.carts.execute("SELECT * FROM cart_items WHERE session = ?", (session,))]
        return {"session": session, "items": items, "total_cents": sum(i["qty"] * i["cents"] for i in items)}

    # -- microservices: catalog, pricing, cart
    async def s_product(self, req: web.Request) -> web.Response:
        pid = int(req.match_info["pid"])
        return _reply(await self.cached(f"product:{pid}", lambda: product_details(self.db, pid),
                                        self.args.work_ms * 0.6))

    async def s_price(self, req: web.Request) -> web.Response:
        pid = int(req.match_info["pid"])
        return _reply(await self.cached(f"price:{pid}", lambda: price_of(self.db, pid), self.args.work_ms * 0.4))

    async def s_cart_add(self, req: web.Request) -> web.Response:
        item = await req.json()
        status, body = await self.call("pricing", "GET", f"/prices/{int(item['product_id'])}")
        if status != 200:
            raise web.HTTPNotFound()
        return web.json_response(self._add_item(req.match_info["session"], item, json.loads(body)["cents"]))

    # -- gateway
    async def g_product(self, req: web.Request) -> web.Response:
        pid = req.match_info["pid"]
        (s1, details), (s2, price) = await asyncio.gather(
            self.call("catalog", "GET", f"/products/{pid}"), self.call("pricing", "GET", f"/prices/{pid}"))
        if s1 != 200 or s2 != 200:
            return web.Response(status=s1 if s1 != 200 else s2, body=details if s1 != 200 else price)
        return web.Response(body=dumps({**json.loads(details), **json.loads(price)}),
                            content_type="application/json")

    async def g_forward(self, req: web.Request) -> web.Response:
        service = "catalog" if req.path.startswith("/catalog") else "cart"
        sticky = req.match_info.get("session")
        body = await req.json() if req.can_read_body else None
        status, payload = await self.call(service, req.method, req.path_qs, sticky=sticky, body=body)
        return web.Response(status=status, body=payload, content_type="application/json")


def _reply(body: bytes | None) -> web.Response:
    if body is None:
        raise web.HTTPNotFound()
    return web.Response(body=body, content_type="application/json")


def _backends(specs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, _, addresses = spec.partition("=")
        out[name] = [f"http://{a}" for a in addresses.split(",") if a]
    return out


def build_app(shop: Shop) -> web.Application:
    token = os.environ.get("LOADFARM_TOKEN", "")  # the farm's, per deployment: only it may reset or read counters

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        if token and request.path.startswith(("/metrics", "/admin")) and not hmac.compare_digest(
                request.headers.get("X-Farm-Token", ""), token):
            return web.json_response({"error": "the farm's token is required"}, status=403)
        shop.obey_reset()
        if not request.path.startswith(("/healthz", "/metrics", "/admin")):
            shop.counters.add("requests")
        return await handler(request)

    app = web.Application(middlewares=[count])
    app.on_startup.append(shop.start)
    app.on_cleanup.append(shop.stop)
    r = app.router
    r.add_get("/healthz", shop.healthz)
    r.add_get("/metrics", shop.metrics)
    r.add_post("/admin/reset", shop.reset)
    if shop.role == "monolith":
        r.add_get("/products/{pid:\\d+}", shop.m_product)
        r.add_get("/catalog", shop.m_catalog)
        r.add_post("/cart/{session}/items", shop.m_cart_add)
        r.add_get("/cart/{session}", shop.m_cart_view)
        r.add_post("/checkout/{session}", shop.m_checkout)
    elif shop.role == "gateway":
        r.add_get("/products/{pid:\\d+}", shop.g_product)
        r.add_get("/catalog", shop.g_forward)
        r.add_post("/cart/{session}/items", shop.g_forward)
        r.add_get("/cart/{session}", shop.g_forward)
        r.add_post("/checkout/{session}", shop.g_forward)
    elif shop.role == "catalog":
        r.add_get("/products/{pid:\\d+}", shop.s_product)
        r.add_get("/catalog", shop.m_catalog)
    elif shop.role == "pricing":
        r.add_get("/prices/{pid:\\d+}", shop.s_price)
    elif shop.role == "cart":
        r.add_post("/cart/{session}/items", shop.s_cart_add)
        r.add_get("/cart/{session}", shop.m_cart_view)
        r.add_post("/checkout/{session}", shop.m_checkout)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--role", required=True, choices=["monolith", "gateway", "catalog", "pricing", "cart"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--cache", default="none", choices=["none", "local", "shared"])
    p.add_argument("--cache-size", type=int, default=400, help="cache entries per instance")
    p.add_argument("--cache-ttl", type=float, default=300.0, help="seconds a cached page stays fresh")
    p.add_argument("--redis-url", default=None)
    p.add_argument("--work-ms", type=float, default=4.0, help="CPU ms to render a page on a cache miss")
    p.add_argument("--checkout-ms", type=float, default=25.0, help="CPU ms of a checkout")
    p.add_argument("--backend", action="append", default=[], help="service=host:port[,host:port...]")
    p.add_argument("--processes", type=int, default=1, choices=range(1, 65), metavar="N",
                   help="worker processes of this instance, sharing its port, carts and counters")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the instance's carts file lives while it runs (default: a temporary folder)")
    args = p.parse_args()
    # Built once before the workers fork: each worker gets a private in-memory copy.
    with closing(open_database(TABLES[args.role])) as db:
        data = db.serialize() if TABLES[args.role] else b""  # SQLite cannot serialise an empty database
    state = Path(tempfile.mkdtemp(prefix=f"shop-{args.role}-", dir=args.state_dir)) \
        if args.role in KEEPS_CARTS else None
    try:
        carts = None if state is None else state / "carts.sqlite"
        if carts is not None:
            create_carts(carts)

        def run(sock: socket.socket, counters: Counters) -> None:
            shop = Shop(args, counters, data, carts)
            web.run_app(build_app(shop), sock=sock, access_log=None, print=None, handle_signals=True)

        code = serve(args.processes, args.host, args.port, run)
    finally:
        if state is not None:
            shutil.rmtree(state, ignore_errors=True)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
