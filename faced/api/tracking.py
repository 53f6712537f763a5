"""The box's own camera on the API: live tracking results, emotion state, preview, health.

Owner: live tracking (issue 5). ``setup(app)`` registers the camera and tracking component
(a ``cleanup_ctx``: models loaded off the loop, then the capture thread
(faced.devices.camera) and the tracking thread (faced.tracking); both stopped at cleanup),
the routes below, the health entries ``camera`` and ``tracking``, and presence events to
the Open Face hub (faced.api.face_service) — which is all a viewer ever sees of a person.

Every route here is camera-derived, hence PRIVATE (faced.api.access): the key when one is
set, loopback clients only when none is.

* ``WS /ws/tracking`` — each result (the analyze schema plus ``frame``, ``ts``, ``fps``,
  ``latency_ms``); ``?encoding=msgpack``; ``?fields=blendshapes,head`` keeps only those
  (plus the stream fields); ``?fps=N`` lowers the per-client rate cap
  (``camera.client_fps``). Each client holds at most one unsent result: a newer one
  replaces it (counted as skipped), so a slow client costs no memory; one whose send is
  stuck for ``SEND_TIMEOUT_S`` is closed with 1008. Each result is encoded once per
  (encoding, fields) in use, not once per client.
* ``GET /api/tracking`` — the latest result; ``GET /api/emotion_state`` — its blendshapes.
* ``GET /api/camera/preview.mjpg`` — multipart JPEG for aiming the camera; 404 unless
  ``camera.preview = true``; frames are encoded in memory, never written to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, cast

import cv2
import msgspec
import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web
from msgspec import Meta

from faced.api import openapi
from faced.api.access import ACCESS_KEY
from faced.api.codec import (
    Encoding,
    EncodingQuery,
    encode,
    frame_type,
    is_ping,
    parse_query,
    respond,
)
from faced.api.errors import ApiError
from faced.api.face_service import OPENFACE_KEY, close_socket
from faced.api.health import HEALTH_KEY
from faced.config import CameraConfig, Config, ConfigError, VisionConfig
from faced.devices.camera import Camera, open_source
from faced.schemas.tracking import EmotionState, PresenceMessage, TrackingResult
from faced.tracking import LiveTracking
from faced.vision.models import ModelError, default_model_dir

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
_client_ids = itertools.count(1)

GroupKey = tuple[Encoding, frozenset[str] | None]


@dataclass(eq=False)
class TrackingClient:
    """One /ws/tracking socket: its encoding, fields, rate cap and one-slot buffer."""

    socket: web.WebSocketResponse
    encoding: Encoding
    fields: frozenset[str] | None
    min_interval_s: float
    pending: bytes | None = None
    next_due: float = -float("inf")
    skipped: int = 0
    sent: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, data: bytes, now: float) -> None:
        interval = self.min_interval_s
        # Over this client's rate cap: it gets a later result instead. A tenth of an
        # interval of slack keeps capture jitter from dropping results at an exact match
        # (camera 30 fps, cap 30/s); the schedule advances by whole intervals, so the
        # average rate never exceeds the cap.
        if now < self.next_due - 0.1 * interval:
            return
        self.next_due = max(self.next_due + interval, now + 0.9 * interval)
        if self.pending is not None:
            self.skipped += 1  # the client is behind: the newer result replaces the old
        self.pending = data
        self.wake.set()


class CameraService:
    """The camera, the tracking, and the tracking sockets of one app."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.camera: Camera | None = None
        self.live: LiveTracking | None = None
        self.clients: set[TrackingClient] = set()
        self.closing = asyncio.Event()
        self.slow_disconnects = 0
        self.has_camera = config.camera.source != "none"

    # --- publishing ----------------------------------------------------------------------

    def broadcast(self, result: TrackingResult) -> None:
        """Offer ``result`` to every client, encoded once per (encoding, fields)."""
        if not self.clients:
            return
        now = time.monotonic()
        encoded: dict[GroupKey, bytes] = {}
        builtins: dict[str, Any] | None = None
        for client in self.clients:
            key: GroupKey = (client.encoding, client.fields)
            data = encoded.get(key)
            if data is None:
                message: Any = result
                if client.fields is not None:
                    if builtins is None:
                        builtins = cast(dict[str, Any], msgspec.to_builtins(result))
                    wanted = client.fields.union(STREAM_FIELDS)
                    message = {k: v for k, v in builtins.items() if k in wanted}
                data = encoded[key] = encode(message, client.encoding)
            client.offer(data, now)

    # --- health --------------------------------------------------------------------------

    def camera_report(self) -> dict[str, Any]:
        if self.camera is None:
            return {"status": "off", "source": self.config.camera.source}
        return self.camera.report()

    def tracking_report(self) -> dict[str, Any]:
        if self.live is None:
            reason = "camera.tracking is false" if self.has_camera else "no camera"
            return {"status": "off", "reason": reason}
        report = self.live.report()
        report["clients"] = len(self.clients)
        report["slow_clients_disconnected"] = self.slow_disconnects
        return report


CAMERA_KEY: Final = web.AppKey("camera_service", CameraService)


def setup(app: web.Application) -> None:
    """Register the camera/tracking component, its routes and health entries."""
    from faced.app import CONFIG_KEY  # noqa: PLC0415  (faced.app imports this module)

    config = app[CONFIG_KEY]
    service = app[CAMERA_KEY] = CameraService(config)
    health = app[HEALTH_KEY]
    health.add_component("camera", service.camera_report)
    health.add_component("tracking", service.tracking_report)

    app.cleanup_ctx.append(_component)
    app.on_shutdown.append(_shutdown)
    add_routes(app)


def add_routes(app: web.Application) -> None:
    """The tracking routes (all camera-derived: PRIVATE), each described where it is added."""
    private = app[ACCESS_KEY].private
    router = app.router
    tags = ("tracking",)
    openapi.describe(
        app,
        private(router.add_get("/ws/tracking", tracking_socket, allow_head=False)),
        openapi.Operation(
            summary="Live tracking results (?encoding=msgpack, ?fields=, ?fps=)",
            tags=tags,
            query=TrackingQuery,
            websocket_sends=TrackingResult,
            errors=(400, 503),
        ),
    )
    openapi.describe(
        app,
        private(router.add_get("/api/tracking", latest_result)),
        openapi.Operation(
            summary="The latest live tracking result of the box's camera",
            tags=tags,
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


def _load_tracker(camera: CameraConfig, vision: VisionConfig) -> Any:
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415  (loads the runtime)
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    del camera
    pipeline = FacePipeline.load(
        vision.model_dir or None,
        num_faces=1,
        runtime=Runtime.from_config(vision),
        detector=vision.detector,
    )
    return pipeline.tracker(smoothing=True)


async def _component(app: web.Application) -> AsyncIterator[None]:
    service = app[CAMERA_KEY]
    config = service.config
    if not service.has_camera:
        yield
        return
    model_dir = await asyncio.to_thread(default_model_dir, config.vision.model_dir or None)
    try:
        source = open_source(config.camera, model_dir)
    except ValueError as exc:
        raise ConfigError(f"camera.source = {config.camera.source!r}: {exc}") from None
    assert source is not None  # only "none" has no source
    tracker = None
    if config.camera.tracking:
        try:
            tracker = await asyncio.to_thread(_load_tracker, config.camera, config.vision)
        except ModelError as exc:
            raise ConfigError(f"camera.tracking needs the face models: {exc}") from None
    camera = service.camera = Camera(
        source, fps=config.camera.fps, rotation=config.camera.rotation, mirror=config.camera.mirror
    )
    if tracker is not None:
        openface = app[OPENFACE_KEY]

        def on_presence(message: PresenceMessage) -> None:
            # Viewers get presence and position only; arrivals and departures are history.
            if message.event != "moved":
                openface.model.record_person(message.event, message.duration)
            openface.hub.publish(message)

        live = service.live = LiveTracking(
            camera, tracker, asyncio.get_running_loop(), on_presence=on_presence
        )
        live.listeners.append(service.broadcast)
        live.start()
    camera.start()
    log.info("camera %s started", source.name, extra={"tracking": tracker is not None})
    try:
        yield
    finally:
        if service.live is not None:
            await asyncio.to_thread(service.live.stop)
        await asyncio.to_thread(camera.stop)


async def _shutdown(app: web.Application) -> None:
    service = app[CAMERA_KEY]
    service.closing.set()
    await asyncio.gather(
        *(
            close_socket(c.socket, WSCloseCode.GOING_AWAY, "server shutting down")
            for c in service.clients
        ),
        return_exceptions=True,
    )


# --- routes ----------------------------------------------------------------------------------


def _live(request: web.Request) -> LiveTracking:
    service = request.app[CAMERA_KEY]
    if service.live is None:
        if not service.has_camera:
            raise ApiError(503, "no camera: camera.source is none")
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

    @classmethod
    def prepare(cls, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("encoding", "fields"):  # blank: the default
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


def _field_names(raw: str) -> frozenset[str]:
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


async def tracking_socket(request: web.Request) -> web.StreamResponse:
    service = request.app[CAMERA_KEY]
    _live(request)
    query = parse_query(request, TrackingQuery)
    encoding = query.encoding
    fields = query.wanted_fields()
    cap = service.config.camera.client_fps
    fps = cap if query.fps is None else min(query.fps, cap)
    if service.closing.is_set():
        raise ApiError(503, "server shutting down")
    if len(service.clients) >= MAX_CLIENTS:
        raise ApiError(
            503,
            f"too many tracking clients: {len(service.clients)} connected, limit {MAX_CLIENTS}",
            headers={"Retry-After": "5"},
        )
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=1024)
    await socket.prepare(request)
    client = TrackingClient(socket, encoding, fields, 1.0 / fps)
    number = next(_client_ids)
    service.clients.add(client)
    sender = asyncio.create_task(_send_loop(service, client, request), name=f"tracking-{number}")
    log.info("tracking client %d connected", number, extra={"encoding": encoding})
    try:
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            # Results flow one way; the only request is a ping.
            if is_ping(message.data):
                await socket.send_str('{"type":"pong"}')
    finally:
        service.clients.discard(client)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        log.info(
            "tracking client %d disconnected",
            number,
            extra={"sent": client.sent, "skipped": client.skipped},
        )
    return socket


async def _send_loop(service: CameraService, client: TrackingClient, request: web.Request) -> None:
    socket = client.socket
    opcode = frame_type(client.encoding)
    while not socket.closed:
        await client.wake.wait()
        client.wake.clear()
        data, client.pending = client.pending, None
        if data is None:
            continue
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await socket.send_frame(data, opcode)
        except TimeoutError:
            service.slow_disconnects += 1
            log.warning("tracking client too slow: disconnected")
            await close_socket(socket, WSCloseCode.POLICY_VIOLATION, "too slow", request)
            return
        except ConnectionError:
            return
        client.sent += 1


async def latest_result(request: web.Request) -> web.StreamResponse:
    latest = _live(request).latest
    if latest is None:
        raise ApiError(503, "no tracking result yet", headers={"Retry-After": "1"})
    return respond(request, latest)


async def emotion_state(request: web.Request) -> web.StreamResponse:
    state = _live(request).emotion_state()
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
    service = request.app[CAMERA_KEY]
    if not service.config.camera.preview:
        raise ApiError(404, "camera preview is off; set camera.preview = true to enable it")
    camera = service.camera
    if camera is None:
        raise ApiError(503, "no camera: camera.source is none")
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


__all__ = ["CAMERA_KEY", "CameraService", "TrackingClient", "setup"]
