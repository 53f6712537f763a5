"""The box's speaker on the API: GET/POST /api/audio/volume.

Owns: the volume routes. Does not own: the speaker, the speech or where the volume
persists (faced.voice under ``SPEAKER_KEY``); agent audio arrives through POST /api/audio
(faced.api.face_routes).
"""

from __future__ import annotations

from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.keys import SPEAKER_KEY
from faced.schemas.audio import Volume, VolumeUpdate


async def get_volume(request: web.Request) -> web.StreamResponse:
    return respond(request, request.app[SPEAKER_KEY].volume)


async def post_volume(request: web.Request) -> web.StreamResponse:
    update = await read_body(request, VolumeUpdate)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    return respond(request, await request.app[SPEAKER_KEY].set_volume(update))


def add_routes(app: web.Application) -> None:
    tags = ("speaker",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/audio/volume", get_volume),
        openapi.Operation(
            summary="The speaker's volume (0-100) and mute",
            tags=tags,
            response=Volume,
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/audio/volume", post_volume),
        openapi.Operation(
            summary="Set the speaker's volume and/or mute; persisted across restarts",
            description="Applied to the samples from the next ~33 ms block on. Either "
            "field may be left out.",
            tags=tags,
            request=VolumeUpdate,
            response=Volume,
            errors=(400, 507),
        ),
    )


__all__ = ["add_routes"]
