"""The display on the API: GET/PUT /api/display.

Owns: the routes. Does not own: the display policy and the component that applies it
(faced.display_policy's ``DisplayService`` under ``DISPLAY_KEY``), or the device
(faced.devices.display).

* ``GET /api/display`` — driver, power, brightness, what the policy calls for, whether a
  manual change holds, the last failure.
* ``PUT /api/display`` ``{"power": bool, "brightness": 0-100}`` (either or both) — a
  manual change, which holds until the policy's level next changes. 400 names a bad field;
  409 when the display has no brightness control; 503 when the device or tool fails (the
  failure also shows in /health, and the API keeps serving).

Both need the API key when one is set (the default ``key`` access, faced.api.access).
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from msgspec import UNSET

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.api.errors import ApiError
from faced.devices.display import DisplayError, Unsupported
from faced.display_policy import DisplayService
from faced.keys import DISPLAY_KEY
from faced.schemas.display import DisplayChange, DisplayStatus, DisplayUpdate

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1024


def add_routes(app: web.Application) -> None:
    tags = ("display",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/display", get_display),
        openapi.Operation(
            summary="The attached display: power, brightness, and what the policy calls for",
            tags=tags,
            response=DisplayStatus,
            errors=(503,),  # not started yet
        ),
    )
    openapi.describe(
        app,
        router.add_put("/api/display", put_display),
        openapi.Operation(
            summary="Switch the display on or off, or set its brightness",
            description="A manual change holds until the policy's level next changes (a "
            "person arrives after the display dimmed, an idle step, the face falls asleep or "
            "wakes, the night window starts or ends). 409: no brightness control; 503: the "
            "device or its tool failed (also in /health).",
            tags=tags,
            request=DisplayChange,
            response=DisplayStatus,
            errors=(400, 409, 503),
        ),
    )


def _service(request: web.Request) -> DisplayService:
    return started(request.app[DISPLAY_KEY])


def started(service: DisplayService) -> DisplayService:
    """The service, or 503 while its display is not started yet."""
    if service.display is None:
        raise ApiError(503, "the display is not started yet", headers={"Retry-After": "1"})
    return service


async def get_display(request: web.Request) -> web.StreamResponse:
    return respond(request, _service(request).status())


async def put_display(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    update = await read_body(request, DisplayUpdate, max_bytes=MAX_BODY_BYTES, name_the_field=True)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    await change(service, update, "a client")
    return respond(request, service.status())


async def change(service: DisplayService, update: DisplayUpdate, who: str) -> None:
    """A manual change (PUT /api/display, an MQTT command): the same checks and errors."""
    started(service)
    power = None if update.power is UNSET else update.power
    brightness = None if update.brightness is UNSET else update.brightness
    if power is None and brightness is None:
        raise ApiError(
            400,
            "nothing to change: expected 'power' (true/false) or 'brightness' (0-100)",
            extra={"allowed": ["power", "brightness"]},
        )
    try:
        await service.set_manual(power=power, brightness=brightness)
    except Unsupported as exc:
        raise ApiError(409, str(exc), extra={"field": "brightness"}) from None
    except DisplayError as exc:
        raise ApiError(503, f"the display did not change: {exc}") from None
    log.info("display set by %s", who, extra={"power": power, "brightness": brightness})


__all__ = ["add_routes", "change", "started"]
