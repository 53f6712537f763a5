"""The pages: the viewer (the face), the dashboard, and their static files.

Owns: serving faced/web — the two pages, ``/static/…`` with its own JSON 404, and the
viewer's ``?server=`` (another daemon's socket, which this one response's CSP then allows).
Does not own: the CSP and other headers (faced.api.middlewares), or what the pages do (the
JavaScript in faced/web/static/js).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from msgspec import Meta

from faced.api import openapi
from faced.api.codec import Query, parse_query
from faced.api.middlewares import CONNECT_SOURCES_KEY, remote_viewer_sources

WEB_DIR: Final = Path(__file__).resolve().parents[1] / "web"
STATIC_DIR: Final = WEB_DIR / "static"


def add_routes(app: web.Application) -> None:
    """The viewer, the dashboard and their static files (public: faced.api.access)."""
    router = app.router
    html = {"text/html": {"type": "string"}}
    tags = ("pages",)
    openapi.describe(
        app,
        router.add_get("/", viewer_page),
        openapi.Operation(
            summary="The viewer page (the face)",
            tags=tags,
            query=ViewerPageQuery,
            response_content=html,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/dashboard", _page("dashboard.html")),
        openapi.Operation(summary="The dashboard page", tags=tags, response_content=html),
    )
    openapi.describe(
        app,
        router.add_get("/static/{name:.+}", static_file),
        openapi.Operation(
            summary="Static files of the viewer, dashboard and API browser",
            tags=tags,
            errors=(404,),
        ),
    )


def _page(name: str) -> Handler:
    path = WEB_DIR / name

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    page.__name__ = f"page_{path.stem}"
    return page


_viewer_file = _page("index.html")


class ViewerPageQuery(Query, frozen=True):
    server: Annotated[
        str | None, Meta(description="Another daemon's viewer socket: ws://host:port/ws/viewer")
    ] = None


async def viewer_page(request: web.Request) -> web.StreamResponse:
    """The viewer; ``?server=ws://host:port/ws/viewer`` makes this one response's CSP allow
    that daemon's socket and origin (faced.api.middlewares.remote_viewer_sources)."""
    server = parse_query(request, ViewerPageQuery).server
    if server:
        sources = remote_viewer_sources(server)
        if sources is not None:
            request[CONNECT_SOURCES_KEY] = sources
    return await _viewer_file(request)


_STATIC_NAME: Final = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _static_path(name: str) -> Path | None:
    """The file under STATIC_DIR that ``name`` names, if any (runs in a worker thread)."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        return None
    return path


async def static_file(request: web.Request) -> web.StreamResponse:
    # Our own handler rather than add_static: a missing file must be a JSON 404 raised
    # here, not an empty 404 that FileResponse decides on after the middlewares ran.
    name = request.match_info["name"]
    path = await asyncio.to_thread(_static_path, name) if _STATIC_NAME.fullmatch(name) else None
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
