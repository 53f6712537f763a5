"""The Eyeconic-style analyze API: frames in, faces out (same schema as `faced analyze`).

Owner: the analyze API (issue 5). ``setup(app)`` registers the worker pool
(faced.vision.workers, a ``cleanup_ctx``: models verified at startup), its /health report
and the model's name/version, and the routes:

* ``POST /v1/analyze`` — one image (multipart field ``image``, or a raw ``image/*`` body),
  read as a stream with a size limit; ``?landmarks=true``, ``?num_faces=N`` (or form
  fields of those names);
* ``POST /v1/analyze/base64`` — JSON or msgpack ``Base64Request``;
* ``WS /v1/stream`` — binary messages are encoded images, text messages JSON
  ``StreamFrame``s (msgpack with ``?encoding=msgpack``); an optional first message
  ``{"token": KEY, "fps": 30}`` authenticates (access class HANDSHAKE). A connection counts
  against the ``pool.size × STREAMS_PER_WORKER`` stream places only once it has
  authenticated; until then it waits at most ``HANDSHAKE_TIMEOUT_S`` among a bounded number
  of waiting handshakes (overall and per client). Each stream pins one worker and owns a
  tracker. Frames that arrive while one is being analyzed replace the
  waiting one (latest wins) and the next reply counts them in ``skipped``: at most one frame
  in flight and one waiting per connection.

Every client mistake is an ApiError: 400 (empty, bad base64, bad field), 413 (too many
bytes or pixels), 415 (not JPEG/PNG/WebP), 422 (a corrupt image), 503 with Retry-After
when every worker is busy. Decoding and inference run on the workers' threads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import BodyPartReader, StreamReader, WSCloseCode, WSMsgType, hdrs, web

from faced.api import openapi
from faced.api.access import ACCESS_KEY
from faced.api.codec import Encoding, encode, read_body, respond
from faced.api.errors import ApiError
from faced.api.health import HEALTH_KEY
from faced.api.middlewares import CLIENT_KEY, PENDING_AUTH_KEY, PendingAuth
from faced.api.ratelimit import rate_key
from faced.schemas.analysis import Analysis
from faced.schemas.analyze_api import (
    Base64Request,
    FrameId,
    StreamError,
    StreamFrame,
    StreamHello,
    StreamReady,
    StreamResult,
)
from faced.vision.image_io import ImageError, decode_for_pipeline, image_size
from faced.vision.pipeline import MAX_FACES, FacePipeline
from faced.vision.runtime import Runtime
from faced.vision.tracker import Tracker
from faced.vision.workers import ANALYZE_POOL_KEY, AnalyzePool, PoolBusy, analyze_pool_ctx

log = logging.getLogger(__name__)

STREAMS_PER_WORKER: Final = 4
"""Open /v1/stream connections per worker before new ones get 503."""
HANDSHAKE_TIMEOUT_S: Final = 5.0
"""How long a socket may take to send ``{"token": KEY}`` (close 1008 after)."""
HANDSHAKES_PER_STREAM_PLACE: Final = 2
"""Sockets that may wait for their handshake at once, per stream place. Each may buffer
one message of up to ``max_base64_chars`` before it is refused, so this bounds what
unauthenticated clients can make the process hold (and their file descriptors)."""
HANDSHAKES_PER_CLIENT: Final = 2
"""Sockets one client address (IPv6: its /64) may have waiting for their handshake."""
CLOSE_TIMEOUT_S: Final = 2.0
"""How long a closing stream waits for the client's close frame."""
_FIELD_MAX_BYTES: Final = 64  # a form field such as num_faces=2
_BASE64_SLACK: Final = 4096  # the JSON around image_base64
_DATA_URL_PREFIX: Final = "data:"


@dataclass
class AnalyzeApi:
    """Limits and the live streams of this app."""

    max_image_bytes: int
    max_megapixels: float
    streams: set[web.WebSocketResponse] = field(default_factory=set)
    """Authenticated streams (each holds a stream place and a pinned worker)."""
    handshakes: set[web.WebSocketResponse] = field(default_factory=set)
    """Sockets still waiting for their ``{"token": KEY}`` message."""
    waiting: Counter[str] = field(default_factory=Counter)
    """Sockets waiting for their handshake, per client (rate_key)."""
    uploads: int = 0
    """Requests reading or analyzing right now (admission counts these)."""

    @property
    def max_base64_chars(self) -> int:
        return 4 * math.ceil(self.max_image_bytes / 3)


ANALYZE_API_KEY: Final = web.AppKey("analyze_api", AnalyzeApi)


def setup(app: web.Application) -> None:
    from faced.app import CONFIG_KEY  # noqa: PLC0415  (faced.app imports this module)

    vision = app[CONFIG_KEY].vision
    app[ANALYZE_API_KEY] = AnalyzeApi(vision.max_image_bytes, vision.max_megapixels)
    app.cleanup_ctx.append(
        analyze_pool_ctx(
            vision.analyze_workers,
            model_dir=vision.model_dir,
            threads=vision.threads,
            runtime=Runtime.from_config(vision),
            num_faces=vision.num_faces,
            detector=vision.detector,
        )
    )
    health = app[HEALTH_KEY]
    health.add_component("analyze", lambda: _pool_report(app))
    health.add_summary(lambda: _model_summary(app))
    app.on_shutdown.append(_close_streams)

    router = app.router
    openapi.setup(app)  # the document of every route; this module describes its own
    tags = ("analyze",)
    image_errors = (400, 413, 415, 422, 503)
    upload_schema = {
        "type": "object",
        "properties": {
            "image": {"type": "string", "contentMediaType": "application/octet-stream"},
            "landmarks": {"type": "boolean"},
            "num_faces": {"type": "integer", "minimum": 1, "maximum": MAX_FACES},
        },
        "required": ["image"],
    }
    raw_image = {"type": "string", "contentMediaType": "image/*"}
    openapi.describe(
        app,
        router.add_post("/v1/analyze", analyze_upload),
        openapi.Operation(
            summary="Analyze one image (multipart field `image`, or a raw image body)",
            description="JPEG, PNG or WebP. Same result as `faced analyze --jsonl`.",
            tags=tags,
            request_content={
                "multipart/form-data": upload_schema,
                "image/jpeg": raw_image,
                "image/png": raw_image,
                "image/webp": raw_image,
            },
            parameters=(
                {"name": "landmarks", "in": "query", "schema": {"type": "boolean"}},
                {
                    "name": "num_faces",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_FACES},
                },
            ),
            response=Analysis,
            errors=image_errors,
        ),
    )
    openapi.describe(
        app,
        router.add_post("/v1/analyze/base64", analyze_base64),
        openapi.Operation(
            summary="Analyze one base64 image (or data: URL)",
            tags=tags,
            request=Base64Request,
            response=Analysis,
            errors=image_errors,
        ),
    )
    openapi.describe(
        app,
        app[ACCESS_KEY].handshake(router.add_get("/v1/stream", stream, allow_head=False)),
        openapi.Operation(
            summary="Stream frames, get one analysis per analyzed frame (latest wins)",
            description="Binary messages: encoded images; text: JSON StreamFrame "
            "(?encoding=msgpack: msgpack both ways). Optional first message "
            '{"token": KEY, "fps": 30}.',
            tags=tags,
            parameters=(
                {
                    "name": "encoding",
                    "in": "query",
                    "schema": {"enum": ["json", "msgpack"]},
                },
            ),
            websocket_receives=(StreamHello, StreamFrame),
            websocket_sends=(StreamReady, StreamResult, StreamError),
            errors=(400, 503),
        ),
    )


def _pool_report(app: web.Application) -> dict[str, Any]:
    pool = app.get(ANALYZE_POOL_KEY)
    if pool is None:
        return {"status": "off"}
    return {**pool.report(), "handshakes_waiting": app[ANALYZE_API_KEY].waiting.total()}


def _model_summary(app: web.Application) -> dict[str, Any]:
    pool = app.get(ANALYZE_POOL_KEY)
    if pool is None:
        return {}
    pipeline = pool.workers[0].pipeline
    model = pipeline.model_info
    runtime = pipeline.runtime
    return {
        "model": {
            "name": model.name,
            "version": model.version,
            "sha256": model.sha256,
            # What actually runs: back end (with the ONNX provider), precision, file hashes.
            "backend": runtime.backend,
            "precision": runtime.precision,
            "files": {m.file: {"sha256": m.sha256, "runs_on": m.backend} for m in runtime.loaded},
        }
    }


# --- the image checks, shared by every route ---------------------------------------------


def check_image(data: bytes, api: AnalyzeApi) -> None:
    """Cheap header checks (no pixel decoded): empty 400, too big 413, not an image 415,
    a corrupt header 422."""
    if not data:
        raise ApiError(400, "image is empty")
    if len(data) > api.max_image_bytes:
        raise ApiError(413, f"image too large: {len(data)} bytes, limit {api.max_image_bytes}")
    try:
        _kind, width, height = image_size(data)
    except ImageError as exc:
        status = 415 if str(exc).startswith("not a ") else 422
        raise ApiError(status, f"{exc}") from None
    megapixels = width * height / 1e6
    if megapixels > api.max_megapixels:
        raise ApiError(
            413,
            f"image is {width}x{height} ({megapixels:.1f} MP), "
            f"over the {api.max_megapixels:g} MP limit (vision.max_megapixels)",
        )


def from_base64(text: str, api: AnalyzeApi) -> bytes:
    """The bytes of a base64 string or a data: URL; 400/413 with the reason."""
    if text.startswith(_DATA_URL_PREFIX):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise ApiError(400, "image_base64: a data: URL must be data:<type>;base64,<data>")
    if len(text) > api.max_base64_chars + 4:
        raise ApiError(413, f"image too large: limit {api.max_image_bytes} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, f"image_base64 is not valid base64: {exc}") from None


def _decode(source: bytes | str, api: AnalyzeApi) -> Any:
    """Pixels of an image given as bytes or base64 text, checked first (runs on a worker
    thread: a 16 MB base64 string or a large JPEG must not hold up the event loop)."""
    data = from_base64(source, api) if isinstance(source, str) else source
    check_image(data, api)
    try:
        return decode_for_pipeline(data, max_megapixels=api.max_megapixels)
    except ImageError as exc:
        raise ApiError(422, str(exc)) from None


async def _run(app: web.Application, job: Callable[[FacePipeline], Analysis]) -> Analysis:
    try:
        return await app[ANALYZE_POOL_KEY].run(job)
    except PoolBusy as exc:
        raise ApiError(
            503,
            "every analyze worker is busy: retry shortly (vision.analyze_workers sets how many)",
            headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(exc.retry_after_s)))},
        ) from None


@contextlib.contextmanager
def _admitted(request: web.Request) -> Any:
    """Bound the requests reading or waiting at once (memory: each holds one image)."""
    api = request.app[ANALYZE_API_KEY]
    pool = request.app[ANALYZE_POOL_KEY]
    if api.uploads >= pool.capacity:
        pool.rejected += 1
        raise ApiError(
            503,
            "every analyze worker is busy: retry shortly (vision.analyze_workers sets how many)",
            headers={hdrs.RETRY_AFTER: "1"},
        )
    api.uploads += 1
    try:
        yield api
    finally:
        api.uploads -= 1


def _options(landmarks: object, num_faces: object) -> tuple[bool, int | None]:
    if isinstance(landmarks, str):
        lowered = landmarks.strip().lower()
        if lowered not in ("", "true", "false", "1", "0", "yes", "no"):
            raise ApiError(400, f"landmarks must be true or false, got {landmarks!r}")
        landmarks = lowered in ("true", "1", "yes")
    faces: int | None = None
    if num_faces not in (None, ""):
        try:
            faces = int(str(num_faces))
        except ValueError:
            raise ApiError(400, f"num_faces must be an integer 1-{MAX_FACES}") from None
        if not 1 <= faces <= MAX_FACES:
            raise ApiError(400, f"num_faces must be 1-{MAX_FACES}, got {faces}")
    return bool(landmarks), faces


def _job(
    data: bytes | str, api: AnalyzeApi, landmarks: bool, num_faces: int | None
) -> Callable[[FacePipeline], Analysis]:
    def job(pipeline: FacePipeline) -> Analysis:
        return pipeline.analyze(_decode(data, api), landmarks=landmarks, num_faces=num_faces)

    return job


# --- POST /v1/analyze ----------------------------------------------------------------------


async def analyze_upload(request: web.Request) -> web.StreamResponse:
    """Analyze one uploaded image (multipart field `image`, or a raw image/* body)."""
    with _admitted(request) as api:
        query = request.rel_url.query
        fields: dict[str, str] = {}
        content_type = request.content_type
        if request.content_length is not None and request.content_length > api.max_image_bytes + (
            _BASE64_SLACK
        ):
            raise ApiError(
                413,
                f"request body too large: {request.content_length} bytes, "
                f"limit {api.max_image_bytes} (vision.max_image_bytes)",
            )
        if content_type == "multipart/form-data":
            data = await _read_multipart(request, api, fields)
        elif content_type.startswith("image/") or content_type == "application/octet-stream":
            data = await _read_limited(request.content, api.max_image_bytes)
        else:
            raise ApiError(
                415,
                f"unsupported Content-Type {content_type!r}: send multipart/form-data with "
                "an `image` field, or the image itself (image/jpeg, image/png, image/webp)",
            )
        landmarks, num_faces = _options(
            fields.get("landmarks", query.get("landmarks")),
            fields.get("num_faces", query.get("num_faces")),
        )
        check_image(data, api)
        result = await _run(request.app, _job(data, api, landmarks, num_faces))
    return respond(request, result)


async def _read_multipart(request: web.Request, api: AnalyzeApi, fields: dict[str, str]) -> bytes:
    try:
        reader = await request.multipart()
        image: bytes | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "nested multipart bodies are not accepted")
            if part.name == "image":
                if image is not None:
                    raise ApiError(400, "send one `image` field per request")
                image = await _read_limited(part, api.max_image_bytes)
            elif part.name in ("landmarks", "num_faces"):
                raw = await _read_limited(part, _FIELD_MAX_BYTES, what=f"field {part.name}")
                fields[part.name] = raw.decode("utf-8", errors="replace")
            else:
                await part.release()  # unknown fields are skipped unread
    except (ValueError, AssertionError) as exc:  # aiohttp's malformed-multipart errors
        raise ApiError(400, f"malformed multipart body: {exc}") from None
    if image is None:
        raise ApiError(400, "missing field `image` (multipart/form-data)")
    return image


async def _read_limited(
    source: BodyPartReader | StreamReader, limit: int, *, what: str = "image"
) -> bytes:
    """Read a stream to its end, 413 as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    read = source.read_chunk if isinstance(source, BodyPartReader) else source.read
    while chunk := await read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"{what} too large: limit {limit} bytes (vision.max_image_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


# --- POST /v1/analyze/base64 ---------------------------------------------------------------


async def analyze_base64(request: web.Request) -> web.StreamResponse:
    """Analyze one base64 image (JSON or msgpack body)."""
    with _admitted(request) as api:
        body = await read_body(
            request, Base64Request, max_bytes=api.max_base64_chars + _BASE64_SLACK
        )
        assert body is not None
        job = _job(body.image_base64, api, body.landmarks, body.num_faces)
        result = await _run(request.app, job)
    return respond(request, result)


# --- WS /v1/stream -------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    data: bytes | str
    """The encoded frame, or its base64 text."""
    frame_id: FrameId | None
    landmarks: bool
    received: float


class _StreamState:
    """One connection: the waiting frame (latest wins), the skip count, the tracker."""

    def __init__(self) -> None:
        self.waiting: _Pending | None = None
        self.skipped = 0
        self.ready = asyncio.Event()
        self.closed = False


async def stream(request: web.Request) -> web.StreamResponse:
    """Stream frames in, one analysis out per analyzed frame."""
    app = request.app
    api = app[ANALYZE_API_KEY]
    pool = app[ANALYZE_POOL_KEY]
    encoding: Encoding = "msgpack" if request.rel_url.query.get("encoding") == "msgpack" else "json"
    if request.rel_url.query.get("encoding") not in (None, "json", "msgpack"):
        raise ApiError(400, "encoding must be json or msgpack")
    slots = pool.size * STREAMS_PER_WORKER
    pending_auth = request.get(PENDING_AUTH_KEY)
    socket = web.WebSocketResponse(
        heartbeat=30.0,
        timeout=CLOSE_TIMEOUT_S,
        max_msg_size=api.max_base64_chars + _BASE64_SLACK,
    )
    if pending_auth is None:
        _check_stream_place(api, slots)  # 503 before the upgrade
        await socket.prepare(request)
    else:
        # The key comes in the first message. Until it does the socket holds a place among
        # the waiting handshakes (bounded overall and per client), never a stream place,
        # so silent sockets cannot lock out clients that present the key.
        with _waiting_handshake(api, slots, rate_key(request[CLIENT_KEY].address)):
            await socket.prepare(request)
            api.handshakes.add(socket)
            try:
                if not await _handshake(socket, pending_auth, api, encoding):
                    return socket
            finally:
                api.handshakes.discard(socket)
        try:
            _check_stream_place(api, slots)
        except ApiError as exc:  # authenticated, but every stream place is taken
            await _send(socket, StreamError(error=exc.message), encoding)
            await socket.close(
                code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many analyze streams"
            )
            return socket
        await _send(socket, StreamReady(workers=pool.size), encoding)
    await _serve_stream(socket, api, pool, encoding)
    return socket


def _check_stream_place(api: AnalyzeApi, slots: int) -> None:
    if len(api.streams) >= slots:
        raise ApiError(
            503,
            f"too many analyze streams ({len(api.streams)} open)",
            headers={hdrs.RETRY_AFTER: "1"},
        )


@contextlib.contextmanager
def _waiting_handshake(api: AnalyzeApi, slots: int, client: str) -> Iterator[None]:
    """Hold a place among the sockets still waiting for their key, or 503."""
    limit = HANDSHAKES_PER_STREAM_PLACE * slots
    waiting = api.waiting.total()
    if waiting >= limit:
        raise ApiError(
            503,
            f"too many analyze streams waiting for their handshake ({waiting}, limit {limit}): "
            "send the key in a header (X-API-Key, Authorization) or retry",
            headers={hdrs.RETRY_AFTER: "1"},
        )
    if api.waiting[client] >= HANDSHAKES_PER_CLIENT:
        raise ApiError(
            503,
            f"{client} already has {api.waiting[client]} analyze streams waiting for their "
            f"handshake (limit {HANDSHAKES_PER_CLIENT} per client)",
            headers={hdrs.RETRY_AFTER: "1"},
        )
    api.waiting[client] += 1
    try:
        yield
    finally:
        api.waiting[client] -= 1
        if not api.waiting[client]:
            del api.waiting[client]  # the counter holds only clients that are waiting


async def _handshake(
    socket: web.WebSocketResponse, pending_auth: PendingAuth, api: AnalyzeApi, encoding: Encoding
) -> bool:
    """Wait (at most ``HANDSHAKE_TIMEOUT_S``) for ``{"token": KEY}``; True when it is the key.

    Anything else first, or nothing in time, gets an error message and close 1008.
    """
    try:
        message = await socket.receive(timeout=HANDSHAKE_TIMEOUT_S)
    except TimeoutError:
        await _refuse(
            socket,
            f"no handshake within {HANDSHAKE_TIMEOUT_S:g} s: "
            'send {"token": KEY} as the first message',
            encoding,
            reason="handshake timeout",
        )
        return False
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return False  # the client left (or the socket broke) before its handshake
    try:
        hello = _parse_message(message.data, encoding, api, first=True)
        if not isinstance(hello, StreamHello):
            raise ApiError(401, 'API key required: send {"token": KEY} as the first message')
        pending_auth.check(hello.token)
    except ApiError as exc:
        reason = exc.message if exc.status == 403 else "authentication required"
        await _refuse(socket, exc.message, encoding, reason=reason)
        return False
    return True


async def _refuse(
    socket: web.WebSocketResponse, error: str, encoding: Encoding, *, reason: str
) -> None:
    await _send(socket, StreamError(error=error), encoding)
    await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=reason.encode()[:120])


async def _serve_stream(
    socket: web.WebSocketResponse,
    api: AnalyzeApi,
    pool: AnalyzePool,
    encoding: Encoding,
) -> None:
    """An authenticated stream: holds a stream place and a pinned worker until it closes."""
    api.streams.add(socket)
    worker = pool.pin_stream()
    tracker = worker.pipeline.tracker()
    state = _StreamState()
    analyzer = asyncio.create_task(
        _analyze_frames(
            socket, state, pool=pool, worker=worker, tracker=tracker, api=api, encoding=encoding
        ),
        name="analyze-stream",
    )
    try:
        async for message in socket:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                pending = _parse_message(message.data, encoding, api, first=False)
            except ApiError as exc:
                await _send(socket, StreamError(error=exc.message), encoding)
                continue
            if isinstance(pending, StreamHello):
                # Eyeconic's hello from a client that authenticated with a header: welcome.
                await _send(socket, StreamReady(workers=pool.size), encoding)
                continue
            if state.waiting is not None:
                state.skipped += 1  # the waiting frame is stale: the newer one wins
            state.waiting = pending
            state.ready.set()
    finally:
        state.closed = True
        state.ready.set()
        analyzer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await analyzer
        pool.release_stream(worker)
        api.streams.discard(socket)


def _parse_message(
    data: str | bytes, encoding: Encoding, api: AnalyzeApi, *, first: bool
) -> _Pending | StreamHello:
    received = time.perf_counter()
    if isinstance(data, bytes) and (encoding == "json" or _looks_like_image(data)):
        return _Pending(data, None, False, received)
    try:
        raw = msgspec.json.decode(data) if isinstance(data, str) else msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        raise ApiError(
            400, f"message is not valid {'JSON' if isinstance(data, str) else 'msgpack'}: {exc}"
        ) from None
    if not isinstance(raw, dict):
        raise ApiError(400, "message must be an object with image_base64 (or token)")
    try:
        if "image_base64" not in raw and "image" not in raw and ("token" in raw or "fps" in raw):
            return msgspec.convert(raw, StreamHello)
        frame = msgspec.convert(raw, StreamFrame)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid message: {exc}") from None
    image: bytes | str
    if frame.image is not None:
        image = frame.image
    elif frame.image_base64 is not None:
        image = frame.image_base64  # decoded on the worker's thread
    else:
        raise ApiError(400, "message has no image_base64")
    return _Pending(image, frame.id, frame.landmarks, received)


def _looks_like_image(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff" or data[:4] in (b"\x89PNG", b"RIFF")


async def _send(socket: web.WebSocketResponse, message: msgspec.Struct, encoding: Encoding) -> None:
    if socket.closed:
        return
    payload = encode(message, encoding)
    with contextlib.suppress(ConnectionResetError):
        if encoding == "msgpack":
            await socket.send_bytes(payload)
        else:
            await socket.send_str(payload.decode())


async def _analyze_frames(
    socket: web.WebSocketResponse,
    state: _StreamState,
    *,
    pool: AnalyzePool,
    worker: Any,
    tracker: Tracker,
    api: AnalyzeApi,
    encoding: Encoding,
) -> None:
    """Take the latest waiting frame, analyze it on the stream's worker, reply; repeat."""
    frames = 0
    started = time.perf_counter()
    last_ts = -1
    while True:
        await state.ready.wait()
        state.ready.clear()
        if state.closed:
            return
        pending = state.waiting
        if pending is None:
            continue
        state.waiting = None
        skipped, state.skipped = state.skipped, 0
        frame_id: FrameId = pending.frame_id if pending.frame_id is not None else frames + 1
        try:
            timestamp = max(last_ts + 1, int((pending.received - started) * 1000))
            last_ts = timestamp
            result = await pool.run(
                _track_job(pending.data, api, tracker, timestamp, pending.landmarks),
                worker=worker,
            )
        except ApiError as exc:
            await _send(socket, StreamError(error=exc.message, id=frame_id), encoding)
            continue
        except PoolBusy:
            return  # the pool is shutting down
        frames += 1
        reply = StreamResult(
            **msgspec.structs.asdict(result),
            id=frame_id,
            frame=frames,
            latency_ms=round((time.perf_counter() - pending.received) * 1000, 2),
            skipped=skipped,
        )
        await _send(socket, reply, encoding)


def _track_job(
    data: bytes | str, api: AnalyzeApi, tracker: Tracker, timestamp: int, landmarks: bool
) -> Callable[[FacePipeline], Analysis]:
    def job(_: FacePipeline) -> Analysis:
        try:
            return tracker.process(_decode(data, api), timestamp, landmarks)
        except ValueError as exc:  # ImageError is one; prepare()'s shape checks too
            raise ApiError(422, str(exc)) from None

    return job


async def _close_streams(app: web.Application) -> None:
    api = app[ANALYZE_API_KEY]
    for socket in [*api.handshakes, *api.streams]:
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


__all__ = ["ANALYZE_API_KEY", "AnalyzeApi", "check_image", "from_base64", "setup"]
