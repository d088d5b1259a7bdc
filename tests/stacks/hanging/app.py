"""A stack that hangs on purpose: the monolith answers `/` after FAST_MS but never answers every N-th request;
microservices answer every request after SLOW_MS. No CPU is spent: the waits are asyncio sleeps.

A hanging request waits until the farm resets the stack (before the next cell) or the process stops, so a Locust
user that sent it is stuck: it offers no more load, and its request never completes.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

FAST_MS = 5.0  # the monolith's answers, when it answers
SLOW_MS = 30.0  # microservices' answers: slower, but every one of them


class State:
    """Requests seen since the last reset, and the event that releases the hanging ones."""

    def __init__(self) -> None:
        self.requests = 0
        self.released = asyncio.Event()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--architecture", choices=["monolith", "microservices"], required=True)
    parser.add_argument("--hang-every", type=int, default=20)
    args = parser.parse_args()
    hang_every = args.hang_every if args.architecture == "monolith" else 0
    state = State()

    async def work(_request: web.Request) -> web.Response:
        state.requests += 1
        if hang_every and state.requests % hang_every == 0:
            await state.released.wait()  # never answers within the cell
        await asyncio.sleep((FAST_MS if hang_every else SLOW_MS) / 1000)
        return web.json_response({"ok": True})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.json_response({"requests": state.requests, "cache": {"mode": "none"}})

    async def reset(_request: web.Request) -> web.Response:
        state.released.set()  # the previous cell's hanging requests end (their clients are gone)
        state.released = asyncio.Event()
        state.requests = 0
        return web.json_response({"reset": True})

    app = web.Application()
    app.router.add_get("/", work)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/reset", reset)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
