"""What faced perceives of the person, on the API: the summary and its event stream.

Owns: the routes below. Does not own: perceiving (faced.perception, run by faced.live on
each tracking result) or the fan-out of events (``LiveService.person``, a faced.hub with a
bounded queue per subscriber). Every route here is camera-derived, hence PRIVATE
(faced.api.access): the key when one is set, loopback clients only when none is; viewers
get presence only (faced.openface), never these.

* ``GET /api/person`` — the current ``PersonSummary`` (JSON, or msgpack by ``Accept``).
* ``GET /api/person/events`` — Server-Sent Events, one ``PersonEvent`` as JSON per
  ``data:`` line (``event``, ``ts`` and the summary at that moment); a comment line every
  15 s keeps proxies from closing an idle stream. ``?snapshot=1`` first sends the summary
  as it stands when the client joins (``event: "snapshot"``): a client that (re)connects
  while someone is already there learns it without a second request, and with no gap
  between what it read and the first event. A client that lets ``PERSON_QUEUE`` events
  pile up is cut off; the stream ends on shutdown.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Annotated, Final

import msgspec
from aiohttp import web
from msgspec import Meta

from faced.api import openapi
from faced.api.codec import Query, parse_query, respond, sse_response
from faced.api.errors import ApiError
from faced.api.face_sockets import Pump
from faced.api.tracking import READ_HOLD_S, live_tracking
from faced.keys import ACCESS_KEY, LIVE_KEY
from faced.schemas.person import PersonEvent, PersonSummary

log = logging.getLogger(__name__)

MAX_STREAMS: Final = 16
"""Concurrent event streams; more get 503 (each holds a connection and a queue)."""
KEEPALIVE: Final = b": keepalive\n\n"

_stream_ids = itertools.count(1)


class PersonEventsQuery(Query, frozen=True):
    """``/api/person/events``' parameters: ``?snapshot=1``."""

    snapshot: Annotated[
        bool,
        Meta(
            description="First send the current summary as one event with event "
            '"snapshot" (then every change, in order)'
        ),
    ] = False

    @classmethod
    def prepare(cls, params: dict[str, object]) -> dict[str, object]:
        if params.get("snapshot") == "":  # blank: the default
            del params["snapshot"]
        return params


def add_routes(app: web.Application) -> None:
    """The person routes (camera-derived: PRIVATE), each described where it is added."""
    private = app[ACCESS_KEY].private
    router = app.router
    tags = ("perception",)
    openapi.describe(
        app,
        private(router.add_get("/api/person", person_summary)),
        openapi.Operation(
            summary="The person in front of the camera now: presence, distance, attention, "
            "speech, expression",
            tags=tags,
            response=PersonSummary,
            errors=(503,),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/person/events", person_events, allow_head=False)),
        openapi.Operation(
            summary="Server-Sent Events: arrived, left, attention_start/_end, "
            "speaking_start/_end, expression (PersonEvent as JSON per data: line); with "
            "?snapshot=1 the current summary first (event snapshot)",
            tags=tags,
            query=PersonEventsQuery,
            response_content={"text/event-stream": {"type": "string"}},
            errors=(400, 503),
        ),
    )


async def person_summary(request: web.Request) -> web.StreamResponse:
    live = live_tracking(request)
    # Speech, expression and smile need the blendshapes: a reader keeps them on a while.
    request.app[LIVE_KEY].blendshapes.touch("person reader", READ_HOLD_S)
    if live.latest is None:
        raise ApiError(503, "no tracking result yet", headers={"Retry-After": "1"})
    return respond(request, live.perception.summary)


async def person_events(request: web.Request) -> web.StreamResponse:
    service = request.app[LIVE_KEY]
    query = parse_query(request, PersonEventsQuery)
    live = live_tracking(request)
    if service.closing.is_set():
        raise ApiError(503, "server shutting down")
    hub = service.person
    if len(hub) >= MAX_STREAMS:
        raise ApiError(
            503,
            f"too many person event streams: {len(hub)} open, limit {MAX_STREAMS}",
            headers={"Retry-After": "5"},
        )
    response = await sse_response(request)
    number = next(_stream_ids)
    # Queued as the subscriber joins, with no await between: nothing published in between
    # is lost or comes before it (faced.hub).
    first = [_snapshot(live.perception.summary)] if query.snapshot else []
    subscriber = hub.subscribe("sse", first)

    async def finish(code: int, reason: str) -> None:
        del code, reason  # returning from the handler ends the stream

    pump = Pump(subscriber, response.write, finish, request.transport, keepalive=KEEPALIVE)
    task = pump.task = asyncio.create_task(pump.run(), name=f"person-events-{number}")
    log.info("person event stream %d opened", number)
    try:
        await asyncio.wait([task])
    finally:
        hub.unsubscribe(subscriber)
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
        log.info("person event stream %d closed", number)
    return response


def _snapshot(summary: PersonSummary) -> PersonEvent:
    return PersonEvent(event="snapshot", **msgspec.structs.asdict(summary))


__all__ = ["PersonEventsQuery", "add_routes"]
