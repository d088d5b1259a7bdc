"""The reference shop: one HTTP API served as a monolith or as a gateway plus three services.

Run one process per role:  python shop.py --role monolith|gateway|catalog|pricing|cart --port P [...]
Loadfarm never imports this file; it starts it as a process from the stack recipe (stack.yaml).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import random
import sqlite3
import time
import zlib
from collections import OrderedDict
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

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
    """`none`, `local` (in-process LRU with TTL) or `shared` (one Redis for every instance)."""

    def __init__(self, mode: str, capacity: int, ttl: float, redis_url: str | None, prefix: str) -> None:
        self.mode, self.capacity, self.ttl, self.prefix = mode, max(0, capacity), ttl, prefix
        self.hits = self.misses = 0
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
        else:
            value = await self.redis.get(self.prefix + key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def put(self, key: str, value: bytes) -> None:
        if self.mode == "local" and self.capacity:
            self.lru[key] = (time.monotonic() + self.ttl, value)
            self.lru.move_to_end(key)
            while len(self.lru) > self.capacity:
                self.lru.popitem(last=False)
        elif self.mode == "shared":
            await self.redis.set(self.prefix + key, value, ex=max(1, int(self.ttl)))

    async def clear(self) -> None:
        self.hits = self.misses = 0
        self.lru.clear()
        if self.redis is not None:
            await self.redis.flushdb()

    def stats(self) -> dict[str, Any]:
        return {"mode": self.mode, "hits": self.hits, "misses": self.misses,
                "entries": len(self.lru) if self.mode == "local" else None, "capacity": self.capacity}


# ------------------------------------------------------------------------------------------------ data
def open_database(tables: set[str]) -> sqlite3.Connection:
    """This process's own database, generated deterministically (every instance holds the same data)."""
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
    if "cart" in tables:
        db.execute("CREATE TABLE cart_items (session TEXT, product_id INT, qty INT, cents INT)")
        db.execute("CREATE INDEX cart_session ON cart_items(session)")
        db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, session TEXT, total_cents INT, digest TEXT)")
    db.commit()
    return db


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
    items = [dict(r) for r in db.execute("SELECT * FROM cart_items WHERE session = ?", (session,))]
    total = sum(i["qty"] * i["cents"] for i in items)
    burn(checkout_ms)  # payment, fraud checks, invoice rendering: the slow endpoint
    digest = hashlib.sha256(dumps(items)).hexdigest()
    cur = db.execute("INSERT INTO orders (session, total_cents, digest) VALUES (?,?,?)", (session, total, digest))
    db.execute("DELETE FROM cart_items WHERE session = ?", (session,))
    db.commit()
    return {"order": cur.lastrowid, "items": len(items), "total_cents": total}


# ------------------------------------------------------------------------------------------- services
class Shop:
    """One process of the shop in a given role; holds its database, cache and counters."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.role: str = args.role
        self.requests = 0
        self.started = time.time()
        tables = {"monolith": {"catalog", "pricing", "cart"}, "catalog": {"catalog"},
                  "pricing": {"pricing"}, "cart": {"cart"}, "gateway": set()}[self.role]
        self.db = open_database(tables)
        # The cache budget is per instance: the microservices split it between their two caching services.
        capacity = args.cache_size if self.role == "monolith" else args.cache_size // 2
        self.cache = Cache(args.cache, capacity, args.cache_ttl, args.redis_url, prefix=f"{self.role}:")
        self.backends = {name: itertools.cycle(urls) for name, urls in _backends(args.backend).items()}
        self.backend_lists = _backends(args.backend)
        self.http: ClientSession | None = None

    # -- plumbing
    async def start(self, _app: web.Application) -> None:
        if self.backend_lists:
            self.http = ClientSession(connector=TCPConnector(limit=0, keepalive_timeout=30),
                                      timeout=ClientTimeout(total=30))

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
    async def healthz(self, _req: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": self.role, "port": self.args.port})

    async def metrics(self, _req: web.Request) -> web.Response:
        return web.json_response({
            "role": self.role, "port": self.args.port, "requests": self.requests,
            "cache": self.cache.stats(), "cpu_s": time.process_time(), "uptime_s": time.time() - self.started,
        })

    async def reset(self, _req: web.Request) -> web.Response:
        await self.cache.clear()
        self.requests = 0
        if self.role in ("monolith", "cart"):
            self.db.execute("DELETE FROM cart_items")
            self.db.execute("DELETE FROM orders")
            self.db.commit()
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
        return web.json_response(record_order(self.db, req.match_info["session"], self.args.checkout_ms))

    def _add_item(self, session: str, item: dict[str, Any], cents: int) -> dict[str, Any]:
        self.db.execute("INSERT INTO cart_items VALUES (?,?,?,?)",
                        (session, int(item["product_id"]), int(item.get("qty", 1)), cents))
        self.db.commit()
        return self._cart(session)

    def _cart(self, session: str) -> dict[str, Any]:
        items = [dict(r) for r in self.db.execute("SELECT * FROM cart_items WHERE session = ?", (session,))]
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
    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(("/healthz", "/metrics", "/admin")):
            shop.requests += 1
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
    args = p.parse_args()
    shop = Shop(args)
    web.run_app(build_app(shop), host=args.host, port=args.port, access_log=None, print=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
