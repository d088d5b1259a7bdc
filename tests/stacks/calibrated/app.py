"""A stack with a known latency model: each answer waits base + per_request × requests in flight (no CPU).

``--model capacity`` instead gives each service a capacity (see capacity.py beside this file, its closed form):
a replica answers in ``--base-ms`` while at most ``--capacity`` requests are in flight on it and adds
``--penalty-ms`` above that; with ``--backend`` it first passes the request on (round-robin over the backend's
replicas) and answers when that answers. Each request burns ``--cpu-ms`` of CPU (real work, so that the farm's
process-tree CPU sees which service works hardest); ``/metrics`` also counts the requests that arrived over
capacity.

The wait is decided when a request arrives, from the number of requests then in flight (itself included), and
spent in ``asyncio.sleep``: on a busy 2-core machine the latency is still the model's, up to a millisecond of
scheduling jitter. With the calibration locustfile (no think time) every one of U users has its request in
flight, so a cell of U users sees ``base + per_request × U`` (its p95 that, within Locust's bucket).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

# (base ms, ms per request in flight) per model and architecture. "crossing": the monolith is a single server
# whose latency grows fast with load; microservices pay a fixed extra hop but grow slower. Their p95 are equal
# at 17 + 20U = 167 + 5U, i.e. U = 10 users. "identical": both architectures are the same server. The bases end
# in 7: above 100 ms Locust rounds to the nearest 10 ms, so a model value of 107 leaves 7 ms of sleep overshoot and
# scheduling jitter before the bucket of 110, where 110 would be 5 ms from the bucket of 120.
MODELS: dict[str, dict[str, tuple[float, float]]] = {
    "crossing": {"monolith": (17.0, 20.0), "microservices": (167.0, 5.0)},
    "identical": {"monolith": (47.0, 10.0), "microservices": (47.0, 10.0)},
}


def latency_ms(model: str, architecture: str, in_flight: int) -> float:
    """The model's latency of a request that arrives with ``in_flight`` requests in flight (itself included)."""
    base, per_request = MODELS[model][architecture]
    return base + per_request * in_flight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", choices=[*sorted(MODELS), "capacity"], required=True)
    parser.add_argument("--architecture", choices=["monolith", "microservices"], required=True)
    parser.add_argument("--capacity", type=int, default=0, help="requests in flight before it slows down")
    parser.add_argument("--base-ms", type=float, default=200.0, help="the deepest service's answer time")
    parser.add_argument("--penalty-ms", type=float, default=300.0, help="added to a request over capacity")
    parser.add_argument("--cpu-ms", type=float, default=0.0, help="CPU burned per request")
    parser.add_argument("--backend", default="", help="host:port[,host:port...] to pass each request on to")
    args = parser.parse_args()
    state = {"requests": 0, "in_flight": 0, "over_capacity": 0}
    backends = itertools.cycle([f"http://{b}/" for b in args.backend.split(",") if b])
    clients: list[ClientSession] = []

    async def work(_request: web.Request) -> web.Response:
        state["requests"] += 1
        state["in_flight"] += 1
        try:
            if args.model != "capacity":
                await asyncio.sleep(latency_ms(args.model, args.architecture, state["in_flight"]) / 1000)
            else:
                await _capacity(state["in_flight"] > args.capacity)
        finally:
            state["in_flight"] -= 1
        return web.json_response({"ok": True})

    async def _capacity(over: bool) -> None:
        state["over_capacity"] += over
        end = time.thread_time() + args.cpu_ms / 1000  # real CPU work, the same at any load
        while time.thread_time() < end:
            pass
        if not args.backend:
            await asyncio.sleep((args.base_ms + (args.penalty_ms if over else 0)) / 1000)
            return
        if over:
            await asyncio.sleep(args.penalty_ms / 1000)
        if not clients:  # one pooled session per process, unlimited connections: no queue of our own
            clients.append(ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=60)))
        async with clients[0].get(next(backends)) as answer:
            answer.raise_for_status()
            await answer.read()

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.json_response({"requests": state["requests"], "cache": {"mode": "none"},
                                  "capacity": args.capacity, "over_capacity": state["over_capacity"]})

    async def reset(_request: web.Request) -> web.Response:
        state["requests"] = state["over_capacity"] = 0
        return web.json_response({"reset": True})

    async def close(_app: web.Application) -> None:
        for client in clients:
            await client.close()

    app = web.Application()
    app.on_cleanup.append(close)
    app.router.add_get("/", work)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/reset", reset)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
