"""A server whose every answer takes --delay-ms of waiting and no CPU: a latency-bound target."""

from __future__ import annotations

import argparse
import asyncio
import hmac
import os
from typing import Any

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=int, default=50)
    args = parser.parse_args()
    state = {"requests": 0}

    async def slow(_request: web.Request) -> web.Response:
        state["requests"] += 1
        await asyncio.sleep(args.delay_ms / 1000)
        return web.json_response({"ok": True})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics(_request: web.Request) -> web.Response:
        return web.json_response({"requests": state["requests"], "cache": {"mode": "none"}})

    async def reset(_request: web.Request) -> web.Response:
        state["requests"] = 0
        return web.json_response({"reset": True})

    token = os.environ.get("LOADFARM_TOKEN", "")  # the farm's, per deployment: only it may reset or read counters

    @web.middleware
    async def farm_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if token and request.path in ("/metrics", "/admin/reset") and not hmac.compare_digest(
                request.headers.get("X-Farm-Token", ""), token):
            return web.json_response({"error": "the farm's token is required"}, status=403)
        return await handler(request)

    app = web.Application(middlewares=[farm_only])
    app.router.add_get("/", slow)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/admin/reset", reset)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
