"""`farm serve`'s web app (Starlette): read-only pages of the sweeps in the store, a JSON API, and a live channel
(server-sent events) that sends each open page only the sections that changed, at most every second or two."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from farm.errors import NotFoundError
from farm.status import Status, status
from farm.store import views
from farm.store.repository import Store
from farm.web import pages, source
from farm.web.answer import Answer, Answers
from farm.web.pages import Section

STATIC = Path(__file__).parent / "static"
KEEPALIVE_S = 15.0


class BasicAuth:
    """ASGI middleware: every request needs HTTP basic auth with this user and password (compared in constant
    time), else 401 with a challenge."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self._expected = f"{user}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(dict(scope["headers"]).get(b"authorization", b"")):
            await self.app(scope, receive, send)
            return
        refused = Response("authentication required\n", status_code=401, media_type="text/plain",
                           headers={"WWW-Authenticate": 'Basic realm="Loadfarm", charset="UTF-8"'})
        await refused(scope, receive, send)

    def _allowed(self, header: bytes) -> bool:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return secrets.compare_digest(given, self._expected)


class ServerTiming:
    """ASGI middleware: a ``Server-Timing: app;dur=MS`` header on every response, the time from the request to
    the response's start (what `bench/serve.py` reads)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={took:.1f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed if scope["type"] == "http" else send)


class Site:
    """The routes' logic over one store: pages, the JSON API, the live channel."""

    def __init__(self, store: Store, answers: Answers, artefacts_dir: Path, interval_s: float) -> None:
        self.store, self.answers, self.artefacts_dir, self.interval_s = store, answers, artefacts_dir, interval_s
        self._specs: dict[str, tuple[str, dict[str, Any]]] = {}  # a sweep's stack and spec never change
        self._drawn: dict[str, tuple[Answer | None, bool, dict[str, Section]]] = {}

    # ------------------------------------------------------------------ what a page is made of
    def sweep_facts(self, name: str) -> tuple[str, dict[str, Any]]:
        """The sweep's stack and spec (NotFoundError when there is no such sweep)."""
        if name not in self._specs:
            stack = self.store.sweep(name).stack
            self._specs[name] = (stack, self.store.sweep_spec(name)[0])
        return self._specs[name]

    def sweep_sections(self, name: str, root: str) -> dict[str, Section] | None:
        """Every section of the sweep's page as the store has it now; None when the sweep is gone."""
        version = views.version(self.store, name)
        if not version:
            return None
        _, spec = self.sweep_facts(name)
        st = status(self.store, name)
        latest = views.cell_lines(self.store, name, limit=pages.LATEST_CELLS)
        answer = self.answers.latest(name, version)
        current = answer is not None and answer.version == version
        drawn = self._drawn.get(name)
        if drawn is None or drawn[0] is not answer or drawn[1] != current:  # the figures' HTML, once per answer
            drawn = self._drawn[name] = (answer, current, pages.answer_sections(answer, current))
        return {**pages.live_sections(st, spec, latest, root), **drawn[2]}

    # ------------------------------------------------------------------ routes
    def index(self, request: Request) -> Response:
        """The sweeps, with their progress, ETA and failures."""
        root = _root(request)
        sections = pages.index_sections(views.sweep_lines(self.store), root)
        return HTMLResponse(pages.page("index.html.j2", sections, root=root, events_url=f"{root}events",
                                       store=self.store_label()))

    def sweep(self, request: Request) -> Response:
        """One sweep: progress, cells by status and host, failures, the answer and its figures, latest cells."""
        root, name = _root(request), request.path_params["name"]
        found = self._found(lambda: self.sweep_sections(name, root), name, root)
        if isinstance(found, Response):
            return found
        sections = found
        stack, _ = self.sweep_facts(name)
        events = f"{root}sweeps/{_quote(name)}/events"
        return HTMLResponse(pages.page("sweep.html.j2", sections, root=root, events_url=events, name=name,
                                       stack=stack, figures=pages.figure_ids(sections)))

    def cells(self, request: Request) -> Response:
        """Every cell of a sweep, latest first, with links to their Locust reports."""
        root, name = _root(request), request.path_params["name"]
        found = self._found(lambda: (views.cell_lines(self.store, name), self.sweep_facts(name)[1]), name, root)
        if isinstance(found, Response):
            return found
        lines, spec = found
        table = pages.cells_table(lines, spec, name, root)
        return HTMLResponse(pages.page("cells.html.j2", {}, root=root, events_url="", name=name,
                                       total=len(lines), table=Markup(table)))

    def locust_report(self, request: Request) -> Response:
        """A cell's Locust HTML report, when it is in this machine's artefacts folder."""
        root, name, cell_id = _root(request), request.path_params["name"], request.path_params["cell"]
        cell = views.cell_host(self.store, name, cell_id)
        if cell is None:
            return _missing(f"No cell {cell_id!r} in sweep {name!r}.", root)
        path = source.locust_report(self.artefacts_dir, name, cell_id)
        if path is None:
            host, stored = cell
            return _missing(f"Cell {cell_id} has no Locust report in this machine's artefacts folder "
                            f"({self.artefacts_dir}); it ran on {host or 'no host yet'}"
                            + (f", which keeps it under {stored}." if stored else "."), root)
        return FileResponse(path, media_type="text/html")

    def api_sweeps(self, request: Request) -> Response:
        """Every sweep with its counts, as JSON."""
        return _json([{"name": s.info.name, "stack": s.info.stack, "status": s.info.status, "total": s.info.total,
                       "counts": s.info.counts, "eta_s": s.eta_s, "created_at": s.info.created_at.isoformat()}
                      for s in views.sweep_lines(self.store)])

    def api_sweep(self, request: Request) -> Response:
        """A sweep's progress and the document `farm report NAME --format json` prints, as JSON."""
        name = request.path_params["name"]
        version = views.version(self.store, name)
        if not version:
            return _json({"error": f"no sweep named {name!r}"}, status_code=404)
        st = status(self.store, name)
        answer = self.answers.current(name, version)
        if answer.error:
            return _json({"progress": progress_json(st), "error": answer.error}, status_code=500)
        return _json({"progress": progress_json(st), "report": answer.document})

    async def events(self, request: Request) -> Response:
        """The live channel of a page: server-sent events carrying the sections that changed."""
        root = _root(request)
        name = request.path_params.get("name")
        have = _have(request.query_params.get("have", ""))

        def render() -> dict[str, Section] | None:
            if name is None:
                return pages.index_sections(views.sweep_lines(self.store), root)
            try:
                return self.sweep_sections(name, root)
            except NotFoundError:
                return None

        return StreamingResponse(self._stream(render, have), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _stream(self, render: Callable[[], dict[str, Section] | None],
                      have: dict[str, str]) -> AsyncIterator[str]:
        sent, quiet = dict(have), 0.0
        yield "retry: 2000\n\n"
        while True:
            sections = await anyio.to_thread.run_sync(render)
            if sections is None:
                yield "event: gone\ndata: {}\n\n"
                return
            changed: dict[str, Any] = {i: s.as_event() for i, s in sections.items() if sent.get(i) != s.hash}
            changed.update({i: None for i in sent if i not in sections})
            if changed:
                yield f"event: sections\ndata: {json.dumps(changed)}\n\n"
                sent, quiet = {i: s.hash for i, s in sections.items()}, 0.0
            elif quiet >= KEEPALIVE_S:  # a comment, so that proxies keep the connection open
                yield ": keep-alive\n\n"
                quiet = 0.0
            await anyio.sleep(self.interval_s)
            quiet += self.interval_s

    def static(self, request: Request) -> Response:
        """The page script."""
        return FileResponse(STATIC / "live.js", media_type="text/javascript")

    def store_label(self) -> str:
        """The store's URL without its password."""
        return self.store.engine.url.render_as_string(hide_password=True)

    def _found(self, read: Callable[[], Any], name: str, root: str) -> Any:
        try:
            found = read()
        except NotFoundError:
            found = None
        return _missing(f"No sweep named {name!r} in this store.", root) if found is None else found


def progress_json(st: Status) -> dict[str, Any]:
    """A sweep's progress as the JSON API gives it (the facts `farm status` prints)."""
    fields = asdict(st)
    fields["running"] = [{**r, "since": r["since"].isoformat() if isinstance(r["since"], datetime) else r["since"]}
                         for r in st.running]
    return {**fields, "total": st.total, "finished": st.finished}


def make_app(store: Store, *, artefacts_dir: Path, auth: tuple[str, str] | None = None, interval_s: float = 1.0,
             answers: Answers | None = None) -> Starlette:
    """The web app over ``store``; with ``auth`` (user, password) every request needs basic auth."""
    site = Site(store, answers or Answers(store), artefacts_dir, interval_s)
    routes = [Route("/", site.index), Route("/events", site.events), Route("/static/live.js", site.static),
              Route("/sweeps/{name}", site.sweep), Route("/sweeps/{name}/events", site.events),
              Route("/sweeps/{name}/cells", site.cells),
              Route("/sweeps/{name}/cells/{cell}/locust.html", site.locust_report),
              Route("/api/sweeps", site.api_sweeps), Route("/api/sweeps/{name}", site.api_sweep)]
    middleware = [Middleware(BasicAuth, user=auth[0], password=auth[1])] if auth is not None else []
    app = Starlette(routes=routes, middleware=[*middleware, Middleware(ServerTiming)])
    app.state.site = site
    return app


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") + "/"


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _have(raw: str) -> dict[str, str]:
    """The sections a page has (``id:hash,…``), as the live script sends them."""
    pairs = (item.partition(":") for item in raw.split(",") if item)
    return {i: h for i, _, h in pairs if i}


def _json(value: Any, status_code: int = 200) -> Response:
    # json.dumps as `farm report --format json` prints it (Starlette's JSONResponse refuses NaN, which it allows)
    return Response(json.dumps(value, indent=2, default=str) + "\n", status_code=status_code,
                    media_type="application/json")


def _missing(message: str, root: str) -> Response:
    return HTMLResponse(pages.page("missing.html.j2", {}, root=root, events_url="", message=message),
                        status_code=404)
