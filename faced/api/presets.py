"""Face packs on the API: GET /api/v1/presets, GET/PUT /api/config.

Owns: the routes. ``PUT /api/config {"face": slug}`` (API key when one is set) switches
every viewer live. Does not own: the packs, the choice or where it persists
(faced.face_packs under ``PRESETS_KEY``).
"""

from __future__ import annotations

from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.keys import PRESETS_KEY
from faced.schemas.presets import (
    PresetList,
    ViewerConfig,
    ViewerConfigUpdate,
    viewer_config_update_of,
)


async def list_presets(request: web.Request) -> web.StreamResponse:
    return respond(request, PresetList(presets=request.app[PRESETS_KEY].presets))


async def get_config(request: web.Request) -> web.StreamResponse:
    return respond(request, ViewerConfig(face=request.app[PRESETS_KEY].face))


async def put_config(request: web.Request) -> web.StreamResponse:
    update = await read_body(request, ViewerConfigUpdate)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    presets = request.app[PRESETS_KEY]
    await presets.switch(update.face)
    return respond(request, ViewerConfig(face=presets.face))


def add_routes(app: web.Application) -> None:
    tags = ("viewer",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/v1/presets", list_presets),
        openapi.Operation(
            summary="The installed face packs (Open Face .face.json files)",
            description="Each pack is served at /static/faces/SLUG.face.json, its cover "
            "(when has_cover) at /static/faces/SLUG.cover.svg.",
            tags=tags,
            response=PresetList,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/config", get_config),
        openapi.Operation(
            summary="The face pack every viewer shows", tags=tags, response=ViewerConfig
        ),
    )
    openapi.describe(
        app,
        router.add_put("/api/config", put_config),
        openapi.Operation(
            summary="Switch every viewer to another face pack, live; persisted",
            description='Viewers get {"type": "config", "face": SLUG} on /ws/viewer.',
            tags=tags,
            request_of=lambda app: viewer_config_update_of(app[PRESETS_KEY].slugs),
            response=ViewerConfig,
            errors=(507,),
        ),
    )


__all__ = ["add_routes"]
