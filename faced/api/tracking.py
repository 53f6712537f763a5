"""The box's own camera on the API: live tracking results, emotion state, preview.

Owns: the routes below. Does not own: the camera, the tracking or the fan-out of results
(faced.live's ``LiveService`` under ``LIVE_KEY``: each /ws/tracking client is a latest-wins
subscriber of its results hub, faced.hub), or presence (faced.openface).

Every route here is camera-derived, hence PRIVATE (faced.api.access): the key when one is
set, loopback clients only when none is.

* ``WS /ws/tracking`` — each result (the analyze schema plus ``frame``, ``ts``, ``fps``,
  ``latency_ms``); ``?encoding=msgpack``; ``?fields=blendshapes,head`` keeps only those
  (plus the stream fields); ``?fps=N`` lowers the per-client rate cap
  (``camera.client_fps``); ``?events=1`` adds every person event (faced.perception, tagged
  ``"type": "person"``) between the results, none skipped (a bounded queue). Each client
  holds at most one unsent result: a newer one replaces it (counted as skipped), so a slow
  client costs no memory; one whose send is stuck for ``SEND_TIMEOUT_S`` is closed with
  1008. Each result is encoded once per (encoding, fields) in use, not once per client.
* ``GET /api/tracking`` — the latest result; ``GET /api/emotion_state`` — its blendshapes.

Live tracking runs the blendshape model only while someone reads the scores (faced.demand,
``LiveService.blendshapes``): a /ws/tracking client whose ``fields`` include them (all
fields, ``blendshapes`` or ``faces``) holds it on while connected; a read of
/api/emotion_state or /api/tracking (unless ``?blendshapes=false``) keeps it on for
``READ_HOLD_S`` after it, and when it was off waits up to ``FIRST_RESULT_S`` for a result
that has them.
* ``GET /api/camera/preview.mjpg`` — multipart JPEG for aiming the camera; 404 unless
  ``camera.preview = true``; frames are encoded in memory, never written to disk.
* ``GET /api/camera/snapshot`` — the current frame as one JPEG (an agent's look); 403
  unless ``camera.snapshots = true``, 503 without a camera or a frame; encoded in memory,
  never written to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Annotated, Any, Final

import cv2
import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web
from msgspec import Meta

from faced.api import openapi
from faced.api.codec import EncodingQuery, Query, frame_type, is_ping, parse_query, respond
from faced.api.errors import ApiError
from faced.devices.camera import Camera
from faced.hub import Hub, LatestSubscriber, Subscriber
from faced.keys import ACCESS_KEY, LIVE_KEY
from faced.live import LiveService, LiveTracking
from faced.openface import close_socket
from faced.schemas.person import PersonEvent
from faced.schemas.tracking import EmotionState, TrackingResult

log = logging.getLogger(__name__)

MAX_CLIENTS: Final = 16
SEND_TIMEOUT_S: Final = 5.0
HEARTBEAT_S: Final = 30.0
PREVIEW_FPS: Final = 10.0
PREVIEW_QUALITY: Final = 75
PREVIEW_BOUNDARY: Final = "faced-preview"
STREAM_FIELDS: Final = ("frame", "ts", "fps", "latency_ms", "face_found")
# Live results carry no landmarks (478 points at 30 fps is the analyze API's job).
TRIMMABLE_FIELDS: Final = frozenset(TrackingResult.__struct_fields__) - {
    *STREAM_FIELDS,
    "landmarks",
}

NO_CAMERA: Final = "no camera: camera.source is none"
READ_HOLD_S: Final = 10.0
"""A polling reader of the blendshapes keeps the model on this long after each read: a
reader that polls every few seconds never sees it stop, one that stopped costs nothing."""
FIRST_RESULT_S: Final = 1.0
"""How long a read waits for a result with blendshapes when the model was off (the next
frame has them: one frame time, up to a detection frame's)."""
BLENDSHAPE_FIELDS: Final = frozenset({"blendshapes", "faces"})

_client_ids = itertools.count(1)


def add_routes(app: web.Application) -> None:
    """The tracking routes (all camera-derived: PRIVATE), each described where it is added."""
    private = app[ACCESS_KEY].private
    router = app.router
    tags = ("tracking",)
    openapi.describe(
        app,
        private(router.add_get("/ws/tracking", tracking_socket, allow_head=False)),
        openapi.Operation(
            summary="Live tracking results (?encoding=msgpack, ?fields=, ?fps=, ?events=1)",
            tags=tags,
            query=TrackingQuery,
            websocket_sends=(TrackingResult, PersonEvent),
            errors=(400, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/tracking", latest_result)),
        openapi.Operation(
            summary="The latest live tracking result of the box's camera",
            tags=tags,
            query=LatestQuery,
            response=TrackingResult,
            errors=(503,),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/emotion_state", emotion_state)),
        openapi.Operation(
            summary="Current blendshape intensities of the person in front of the camera",
            tags=tags,
            response=EmotionState,
            errors=(503,),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/camera/preview.mjpg", preview, allow_head=False)),
        openapi.Operation(
            summary="Camera preview (MJPEG) for aiming the camera; off unless camera.preview",
            tags=tags,
            response_content={"multipart/x-mixed-replace": {"type": "string"}},
            errors=(404, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/camera/snapshot", snapshot)),
        openapi.Operation(
            summary="The camera's current frame as one JPEG; refused unless camera.snapshots",
            tags=tags,
            response_content={"image/jpeg": {"type": "string", "format": "binary"}},
            errors=(403, 503),
        ),
    )


def camera_of(service: LiveService) -> Camera:
    """The box's camera, or the 503 every camera route answers without one."""
    if service.camera is None:
        raise ApiError(503, NO_CAMERA)
    return service.camera


def live_tracking(request: web.Request) -> LiveTracking:
    """The running live tracking, or the 503 that says why there is none (every camera
    route answers the same)."""
    service = request.app[LIVE_KEY]
    if service.live is None:
        if not service.has_camera:
            raise ApiError(503, NO_CAMERA)
        raise ApiError(503, "live tracking is off: camera.tracking is false")
    return service.live


class TrackingQuery(EncodingQuery, frozen=True):
    """``/ws/tracking``'s parameters: ``?encoding=``, ``?fields=a,b``, ``?fps=N``."""

    fields: Annotated[
        str | None,
        Meta(description="Comma-separated result fields to keep (the stream fields stay)"),
    ] = None
    fps: (
        Annotated[
            float,
            Meta(
                gt=0,
                le=1000,
                description="Lower this client's rate cap (camera.client_fps)",
                extra={"expected": "number > 0"},
            ),
        ]
        | None
    ) = None
    events: Annotated[
        bool, Meta(description="Also send person events (type person), every one, in order")
    ] = False

    @classmethod
    def prepare(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("encoding", "fields", "events"):  # blank: the default
            if params.get(name) == "":
                del params[name]
        fps = params.get("fps")
        if fps is not None:
            with contextlib.suppress(ValueError):  # else the conversion names it
                params["fps"] = float(fps)
        return params

    @classmethod
    def problem(cls, name: str, raw: str) -> ApiError | None:
        if name != "fields":
            return None
        unknown = sorted(_field_names(raw) - TRIMMABLE_FIELDS - set(STREAM_FIELDS))
        if not unknown:
            return None
        return ApiError(
            400,
            f"invalid value for 'fields': unknown {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(TRIMMABLE_FIELDS))}",
            extra={"field": "fields", "allowed": sorted(TRIMMABLE_FIELDS)},
        )

    def wanted_fields(self) -> frozenset[str] | None:
        """The named result fields; None: all of them."""
        return None if self.fields is None else _field_names(self.fields)


class LatestQuery(Query, frozen=True):
    """``/api/tracking``'s parameters."""

    blendshapes: Annotated[
        bool,
        Meta(
            description="false: do not switch the blendshape model on for this read (the "
            "result has them only when another reader needs them)"
        ),
    ] = True

    @classmethod
    def prepare(cls, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("blendshapes") == "":
            del params["blendshapes"]
        return params


def _field_names(raw: str) -> frozenset[str]:
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


async def tracking_socket(request: web.Request) -> web.StreamResponse:
    service = request.app[LIVE_KEY]
    live_tracking(request)
    query = parse_query(request, TrackingQuery)
    encoding = query.encoding
    fields = query.wanted_fields()
    cap = service.config.client_fps
    fps = cap if query.fps is None else min(query.fps, cap)
    if service.closing.is_set():
        raise ApiError(503, "server shutting down")
    if service.clients >= MAX_CLIENTS:
        raise ApiError(
            503,
            f"too many tracking clients: {service.clients} connected, limit {MAX_CLIENTS}",
            headers={"Retry-After": "5"},
        )
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=1024)
    await socket.prepare(request)
    hub = service.results
    kept = None if fields is None else fields.union(STREAM_FIELDS)
    subscriber = hub.subscribe_latest(encoding, fields=kept, max_rate_hz=fps)
    number = next(_client_ids)
    wants_blendshapes = fields is None or not fields.isdisjoint(BLENDSHAPE_FIELDS)
    if wants_blendshapes:
        service.blendshapes.acquire("tracking socket")
    # Both loops send on the socket: one frame at a time.
    sending = asyncio.Lock()
    sender = asyncio.create_task(
        _send_loop(service.results, subscriber, socket, request, sending),
        name=f"tracking-{number}",
    )
    senders = [sender]
    events = None
    if query.events:
        events = service.person.subscribe(encoding)
        senders.append(
            asyncio.create_task(
                _send_loop(service.person, events, socket, request, sending),
                name=f"tracking-events-{number}",
            )
        )
    log.info("tracking client %d connected", number, extra={"encoding": encoding})
    try:
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            # Results flow one way; the only request is a ping.
            if is_ping(message.data):
                await socket.send_str('{"type":"pong"}')
    finally:
        if wants_blendshapes:
            service.blendshapes.release("tracking socket")
        hub.unsubscribe(subscriber)
        if events is not None:
            service.person.unsubscribe(events)
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        log.info(
            "tracking client %d disconnected",
            number,
            extra={"sent": subscriber.sent, "skipped": subscriber.skipped},
        )
    return socket


async def _send_loop(
    hub: Hub,
    subscriber: LatestSubscriber | Subscriber,
    socket: web.WebSocketResponse,
    request: web.Request,
    lock: asyncio.Lock,
) -> None:
    opcode = frame_type(subscriber.encoding)
    sending = False
    task = asyncio.current_task()

    def interrupt() -> None:
        # Shutdown while a send is stuck on a client that does not read: the close must
        # not wait behind it (close_socket drops a peer that does not answer in time).
        if sending and task is not None:
            task.cancel()

    subscriber.on_close = interrupt
    try:
        while (data := await subscriber.next()) is not None:
            sending = True
            try:
                async with asyncio.timeout(SEND_TIMEOUT_S), lock:
                    await socket.send_frame(data, opcode)
            except TimeoutError:
                sending = False
                log.warning("tracking client too slow: disconnected")
                hub.disconnect(subscriber, WSCloseCode.POLICY_VIOLATION, "too slow", slow=True)
                await close_socket(socket, WSCloseCode.POLICY_VIOLATION, "too slow", request)
                return
            except ConnectionError:
                return
            sending = False
    except asyncio.CancelledError:
        if not subscriber.closed or task is None:
            raise
        task.uncancel()
    # The hub closed the subscription (shutdown): the socket closes with its code.
    await close_socket(socket, subscriber.close_code, subscriber.close_reason, request)


async def latest_result(request: web.Request) -> web.StreamResponse:
    live = live_tracking(request)
    query = parse_query(request, LatestQuery)
    latest = live.latest
    if query.blendshapes:
        request.app[LIVE_KEY].blendshapes.touch("tracking reader", READ_HOLD_S)
        latest = await live.result_with_blendshapes(FIRST_RESULT_S)
    if latest is None:
        raise ApiError(503, "no tracking result yet", headers={"Retry-After": "1"})
    return respond(request, latest)


async def emotion_state(request: web.Request) -> web.StreamResponse:
    live = live_tracking(request)
    request.app[LIVE_KEY].blendshapes.touch("emotion_state", READ_HOLD_S)
    await live.result_with_blendshapes(FIRST_RESULT_S)
    state = live.emotion_state()
    if state is None:
        raise ApiError(503, "no tracking result yet", headers={"Retry-After": "1"})
    return respond(request, state)


def _jpeg(image: np.ndarray[Any, np.dtype[np.uint8]]) -> bytes:
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, PREVIEW_QUALITY]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(data)


async def preview(request: web.Request) -> web.StreamResponse:
    service = request.app[LIVE_KEY]
    if not service.config.preview:
        raise ApiError(404, "camera preview is off; set camera.preview = true to enable it")
    camera = camera_of(service)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={PREVIEW_BOUNDARY}",
            "Cache-Control": "no-store",
        }
    )
    await response.prepare(request)
    last_index = -1
    interval = 1.0 / PREVIEW_FPS
    with contextlib.suppress(ConnectionError):
        while not service.closing.is_set():
            frame = camera.latest
            if frame is not None and frame.index != last_index:
                last_index = frame.index
                jpeg = await asyncio.to_thread(_jpeg, frame.image)
                await response.write(
                    f"--{PREVIEW_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await service.closing.wait()
    return response


async def snapshot(request: web.Request) -> web.StreamResponse:
    service = request.app[LIVE_KEY]
    if not service.config.snapshots:
        # 403, not 404: the route exists and the key may be right; the box's owner said no.
        raise ApiError(403, "camera snapshots are off; set camera.snapshots = true to allow them")
    camera = camera_of(service)
    frame = camera.latest
    if frame is None:
        raise ApiError(503, "no camera frame yet", headers={"Retry-After": "1"})
    jpeg = await asyncio.to_thread(_jpeg, frame.image)
    return web.Response(
        body=jpeg,
        content_type="image/jpeg",
        headers={"Cache-Control": "no-store"},
    )


__all__ = ["add_routes"]
