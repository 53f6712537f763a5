"""``WS /v1/stream``: frames in, one analysis out per analyzed frame (Eyeconic's stream).

Owns: the stream socket, its handshake and its places. Binary messages are encoded images,
text messages JSON ``StreamFrame``s (msgpack with ``?encoding=msgpack``); an optional first
message ``{"token": KEY, "fps": 30}`` authenticates (access class HANDSHAKE). A connection
counts against the ``pool.size × STREAMS_PER_WORKER`` stream places only once it has
authenticated; until then it waits at most ``HANDSHAKE_TIMEOUT_S`` among a bounded number
of waiting handshakes (overall and per client). Each stream pins one worker and owns a
tracker. Frames that arrive while one is being analyzed replace the waiting one (latest
wins) and the next reply counts them in ``skipped``: at most one frame in flight and one
waiting per connection.

Does not own: the limits, decoding and refusal statuses it shares with the one-shot routes
(faced.api.analyze), the worker pool (faced.vision.workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from faced.api import openapi
from faced.api.analyze import (
    BASE64_SLACK,
    AnalyzeApi,
    decode_source,
)
from faced.api.codec import (
    Encoding,
    EncodingQuery,
    decode_frame,
    encode,
    frame_type,
    parse_query,
)
from faced.api.errors import ApiError
from faced.api.middlewares import CLIENT_KEY, PENDING_AUTH_KEY, PendingAuth
from faced.api.ratelimit import rate_key
from faced.keys import ACCESS_KEY, ANALYZE_API_KEY, ANALYZE_POOL_KEY
from faced.schemas.analysis import Analysis
from faced.schemas.analyze_api import (
    FrameId,
    StreamError,
    StreamFrame,
    StreamHello,
    StreamReady,
    StreamResult,
)
from faced.vision.image_io import looks_like_image
from faced.vision.pipeline import FacePipeline
from faced.vision.tracker import Tracker
from faced.vision.workers import AnalyzePool, PoolBusy

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


def setup(app: web.Application) -> None:
    """Add and describe the stream route; its sockets close with 1001 on shutdown."""
    app.on_shutdown.append(close_streams)
    openapi.describe(
        app,
        app[ACCESS_KEY].handshake(app.router.add_get("/v1/stream", stream, allow_head=False)),
        openapi.Operation(
            summary="Stream frames, get one analysis per analyzed frame (latest wins)",
            description="Binary messages: encoded images; text: JSON StreamFrame "
            "(?encoding=msgpack: msgpack both ways). Optional first message "
            '{"token": KEY, "fps": 30}.',
            tags=("analyze",),
            query=EncodingQuery,
            websocket_receives=(StreamHello, StreamFrame),
            websocket_sends=(StreamReady, StreamResult, StreamError),
            errors=(400, 503),
        ),
    )


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
    encoding = parse_query(request, EncodingQuery).encoding
    slots = pool.size * STREAMS_PER_WORKER
    pending_auth = request.get(PENDING_AUTH_KEY)
    socket = web.WebSocketResponse(
        heartbeat=30.0,
        timeout=CLOSE_TIMEOUT_S,
        max_msg_size=api.max_base64_chars + BASE64_SLACK,
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
    try:
        tracker = (await pool.prepare(worker)).tracker()
    except BaseException:
        pool.release_stream(worker)
        api.streams.discard(socket)
        raise
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
    if isinstance(data, bytes) and (encoding == "json" or looks_like_image(data)):
        return _Pending(data, None, False, received)
    try:
        raw = decode_frame(data)
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


async def _send(socket: web.WebSocketResponse, message: msgspec.Struct, encoding: Encoding) -> None:
    if socket.closed:
        return
    payload = encode(message, encoding)
    with contextlib.suppress(ConnectionResetError):
        await socket.send_frame(payload, frame_type(encoding))


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
            return tracker.process(decode_source(data, api), timestamp, landmarks)
        except ValueError as exc:  # ImageError is one; prepare()'s shape checks too
            raise ApiError(422, str(exc)) from None

    return job


async def close_streams(app: web.Application) -> None:
    api = app[ANALYZE_API_KEY]
    for socket in [*api.handshakes, *api.streams]:
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


__all__ = [
    "CLOSE_TIMEOUT_S",
    "HANDSHAKES_PER_CLIENT",
    "HANDSHAKES_PER_STREAM_PLACE",
    "HANDSHAKE_TIMEOUT_S",
    "STREAMS_PER_WORKER",
    "setup",
    "stream",
]
