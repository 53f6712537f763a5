"""The calibration routes: measure, show and remove the person's neutral face.

Owns: ``POST /api/tracking/calibrate`` (``{"seconds": 2}``, 0.5..10; an empty body means 2
s) records the neutral over that window of live results and answers with it; ``GET`` shows
the calibration in use, ``DELETE`` removes it. A calibration is refused with 409 when
nobody or more than one person is in view (at the start or over most of the window) or
while another is being recorded; 503 without live tracking. Does not own: the measuring,
the arithmetic or the file (faced.calibration, the ``Calibration`` of faced.live's
``LiveService``). Camera-derived (a face's measurements): PRIVATE (faced.api.access).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.api.tracking import live_tracking
from faced.calibration import CalibrationRequest, CalibrationState, Neutral
from faced.keys import ACCESS_KEY, LIVE_KEY

PATH: Final = "/api/tracking/calibrate"
MAX_BODY_BYTES: Final = 1024


def add_routes(app: web.Application) -> None:
    private = app[ACCESS_KEY].private
    router = app.router
    tags = ("tracking",)
    openapi.describe(
        app,
        private(router.add_post(PATH, calibrate)),
        openapi.Operation(
            summary="Record the person's neutral face over a few seconds; calibrate scores",
            description=(
                "Live results, /api/emotion_state and perception then report each blendshape "
                "as (raw - neutral) / (1 - neutral), clamped to 0..1, with calibrated: true. "
                "409 when nobody or more than one person is in view, or while another "
                "calibration is being recorded."
            ),
            tags=tags,
            request=CalibrationRequest,
            request_optional=True,
            response=Neutral,
            errors=(400, 409, 503, 507),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get(PATH, show)),
        openapi.Operation(
            summary="The calibration in use (the neutral face), if any",
            tags=tags,
            response=CalibrationState,
        ),
    )
    openapi.describe(
        app,
        private(router.add_delete(PATH, remove)),
        openapi.Operation(
            summary="Remove the calibration: live results report raw scores again",
            tags=tags,
            response=CalibrationState,
        ),
    )


async def calibrate(request: web.Request) -> web.StreamResponse:
    service = request.app[LIVE_KEY]
    body = await read_body(
        request, CalibrationRequest, max_bytes=MAX_BODY_BYTES, allow_empty=True, name_the_field=True
    )
    seconds = (body or CalibrationRequest()).seconds
    live = live_tracking(request)
    neutral = await service.calibration.record(seconds, live.latest)
    return respond(request, neutral)


async def show(request: web.Request) -> web.StreamResponse:
    return respond(request, request.app[LIVE_KEY].calibration.state())


async def remove(request: web.Request) -> web.StreamResponse:
    calibration = request.app[LIVE_KEY].calibration
    await calibration.clear()
    return respond(request, calibration.state())


__all__ = ["add_routes"]
