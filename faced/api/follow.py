"""Gaze follow on the API: GET/PUT /api/follow.

Owns: the routes (access class "key", faced.api.access): ``GET /api/follow`` — the mode,
hold time, whether tracking runs, what an agent holds now; ``PUT /api/follow`` — change
the mode and/or the hold time until restart (``[follow]`` in the config sets them at
start). Does not own: gaze follow itself (faced.gaze_follow under ``FOLLOW_KEY``).
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.keys import FOLLOW_KEY
from faced.schemas.follow import FollowStatus, FollowUpdate

log = logging.getLogger(__name__)

_MAX_BODY_BYTES: Final = 1024


async def get_follow(request: web.Request) -> web.StreamResponse:
    return respond(request, request.app[FOLLOW_KEY].status())


async def put_follow(request: web.Request) -> web.StreamResponse:
    service = request.app[FOLLOW_KEY]
    update = await read_body(request, FollowUpdate, max_bytes=_MAX_BODY_BYTES, name_the_field=True)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    service.change(update)
    return respond(request, service.status())


def add_routes(app: web.Application) -> None:
    tags = ("viewer",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/follow", get_follow),
        openapi.Operation(
            summary="Gaze follow and mirror: the mode, the hold time, what an agent holds",
            tags=tags,
            response=FollowStatus,
        ),
    )
    openapi.describe(
        app,
        router.add_put("/api/follow", put_follow),
        openapi.Operation(
            summary="Change the gaze-follow mode and/or hold time (until restart)",
            description="Modes: off (the camera changes nothing), follow (lookAt looks at "
            "the person), mirror (follow, and the face copies blinks, jaw, smile, brows). "
            "Viewers see ordinary state fields; leaving a mode returns the fields it set "
            "to rest.",
            tags=tags,
            request=FollowUpdate,
            response=FollowStatus,
            errors=(400,),
        ),
    )


__all__ = ["add_routes"]
