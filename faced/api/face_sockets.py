"""The streaming side of Open Face: viewer and agent WebSockets, and the event stream.

Owns: the viewer and agent sockets, the event stream, and the pump that drains a hub
subscriber into one connection. Does not own: the fan-out (faced.hub), the face model
(faced.openface), framing and query parsing (faced.api.codec).

* ``GET /ws/viewer`` (public, read-only) — the current state, the history if any, then
  every broadcast; ``{"type":"ping"}`` → ``{"type":"pong"}``. Each viewer is a hub
  subscriber drained by its own pump task (faced.hub): a viewer that cannot keep up is
  closed with 1008 and holds nothing.
* ``GET /ws/agent`` — each message is a state update (``type`` optional), ``ping`` → pong,
  ``reset`` → the default state. Over ``limits.agent_message_max_bytes``, faster than
  ``limits.agent_messages_per_s``, not JSON/msgpack, or a bad field: an
  ``{"type":"error",…}`` reply, the message dropped, the socket left open.
* ``GET /api/events`` — Server-Sent Events carrying what viewers get (``data: {json}``),
  counted against ``limits.max_viewers``, with a comment line every ``KEEPALIVE_S``.

Viewer places (sockets and event streams) are shared out by ``OpenFace.viewer_slot``: at
most ``limits.viewers_per_client`` per client off the box, and a few always left for
loopback (the appliance's own screen).

``?encoding=msgpack`` makes a socket speak binary msgpack frames both ways (text frames
are still read as JSON). Over the limits on concurrent viewers/agents: 503 before the
handshake. All sockets close with 1001 on shutdown (faced.openface).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import msgspec
from aiohttp import WSMsgType, web

from faced.api import openapi
from faced.api.codec import (
    Encoding,
    EncodingQuery,
    decoder,
    encode,
    frame_type,
    is_ping,
    parse_query,
    problem_of,
    sse_response,
)
from faced.api.middlewares import CLIENT_KEY
from faced.face import InvalidUpdate
from faced.hub import Subscriber
from faced.keys import OPENFACE_KEY
from faced.openface import OpenFace, close_socket
from faced.schemas.face_state import (
    ErrorMessage,
    FaceState,
    PongMessage,
    Problem,
    StateUpdate,
)

log = logging.getLogger(__name__)

HEARTBEAT_S: Final = 30.0
KEEPALIVE_S: Final = 15.0
VIEWER_MAX_MESSAGE_BYTES: Final = 1024
DIRECT_WRITE_LIMIT: Final = 64 * 1024
# Agent messages up to this size are read and refused politely; larger frames close the
# socket (1009) without being buffered.
_AGENT_FRAME_CAP_FACTOR: Final = 16
AGENT_STEP_S: Final = 0.002
"""How long an agent socket may go on with messages already read before it lets the rest
of the daemon in (faced.api.face_sockets.agent_socket)."""

_PONG: Final = PongMessage()
_KEEPALIVE: Final = b": keepalive\n\n"
_connection_ids = itertools.count(1)


def add_routes(app: web.Application) -> None:
    """The viewer and agent sockets and the event stream, each described where it is added."""
    router = app.router
    tags = ("open face",)
    openapi.describe(
        app,
        router.add_get("/ws/viewer", viewer_socket, allow_head=False),
        openapi.Operation(
            summary="Viewer socket: state, history, audio; ping -> pong",
            tags=tags,
            query=EncodingQuery,
            websocket_sends=FaceState,
            errors=(400, 503),
        ),
    )
    openapi.describe(
        app,
        router.add_get("/ws/agent", agent_socket, allow_head=False),
        openapi.Operation(
            summary="Agent socket: every text message is a state update",
            tags=tags,
            query=EncodingQuery,
            websocket_receives=StateUpdate,
            websocket_sends=FaceState,
            errors=(400, 503),
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/events", event_stream, allow_head=False),
        openapi.Operation(
            summary="Server-Sent Events: what viewers receive",
            tags=tags,
            response_content={"text/event-stream": {"type": "string"}},
            errors=(503,),
        ),
    )


def socket_encoding(request: web.Request) -> Encoding:
    return parse_query(request, EncodingQuery).encoding


def _error(problem: Problem) -> ErrorMessage:
    return ErrorMessage(
        message=problem.message,
        field=problem.field,
        allowed=list(problem.allowed) if problem.allowed is not None else None,
        expected=problem.expected,
    )


# --- viewers ------------------------------------------------------------------------------


class Pump:
    """Drains one subscriber into one connection, from its own task.

    When the hub closes the subscriber (too slow, or shutdown) while the pump waits for a
    message, the pump ends the connection gracefully (``finish``: close frame with the
    code, or the end of the event stream). When it happens while the pump is stuck
    sending to a peer that does not read, the send is interrupted and the connection
    aborted: a close frame queued behind megabytes would never arrive, and waiting for
    it is exactly what must not happen.
    """

    def __init__(
        self,
        subscriber: Subscriber,
        send: Callable[[bytes], Awaitable[Any]],
        finish: Callable[[int, str], Awaitable[None]],
        transport: asyncio.Transport | None,
        keepalive: bytes | None = None,
    ) -> None:
        self.subscriber = subscriber
        self._send = send
        self._finish = finish
        self._transport = transport
        self._keepalive = keepalive
        self._sending = False
        self.task: asyncio.Task[None] | None = None
        subscriber.on_close = self._interrupt

    def _interrupt(self) -> None:
        if self._sending and self.task is not None:
            self.task.cancel()

    async def _next(self) -> bytes | None:
        if self._keepalive is None:
            return await self.subscriber.next()
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                return await self.subscriber.next()
        except TimeoutError:
            return self._keepalive

    async def run(self) -> None:
        subscriber = self.subscriber
        send = self._send
        try:
            while (data := await self._next()) is not None:
                self._sending = True
                await send(data)
                self._sending = False
        except asyncio.CancelledError:
            if not subscriber.closed:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self._transport is not None:
                self._transport.abort()
            return
        except ConnectionError:
            return  # the peer left
        await self._finish(subscriber.close_code, subscriber.close_reason)


def _frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 §5.2 header of a final, unmasked (server-to-client) frame."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def _direct_writer(
    socket: web.WebSocketResponse, transport: asyncio.Transport, opcode: WSMsgType
) -> Callable[[bytes], bool]:
    """The hub's fast path for one viewer: write the frame straight to the transport.

    Used only while the viewer's queue is empty (so nothing is overtaken: the pump writes
    what it takes from the queue before it next yields) and while the transport buffers
    less than ``DIRECT_WRITE_LIMIT``. Beyond that the message is queued and the pump's
    flow control applies, which is how a viewer that does not read is found out.
    Frames are written uncompressed (the socket negotiates no compression).
    """

    def write_now(data: bytes) -> bool:
        if (
            socket.closed
            or transport.is_closing()
            or transport.get_write_buffer_size() > DIRECT_WRITE_LIMIT
        ):
            return False
        transport.writelines((_frame_header(opcode, len(data)), data))
        return True

    return write_now


async def viewer_socket(request: web.Request) -> web.StreamResponse:
    openface = request.app[OPENFACE_KEY]
    encoding = socket_encoding(request)
    transport = request.transport
    with openface.viewer_slot(request[CLIENT_KEY].address):
        # No per-message compression: it would cost a deflate per viewer and message, and
        # the hub encodes each message once for everyone.
        socket = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S, max_msg_size=VIEWER_MAX_MESSAGE_BYTES, compress=False
        )
        await socket.prepare(request)
        connection = next(_connection_ids)
        subscriber = openface.hub.subscribe(encoding, openface.greeting())
        opcode = frame_type(encoding)

        async def send(data: bytes) -> None:
            await socket.send_frame(data, opcode)

        async def finish(code: int, reason: str) -> None:
            await close_socket(socket, code, reason, request)

        runner = Pump(subscriber, send, finish, transport)
        pump = runner.task = openface.spawn(runner.run(), f"face-pump-viewer-{connection}")
        if transport is not None:
            subscriber.write_now = _direct_writer(socket, transport, opcode)
        log.info("viewer %d connected", connection, extra={"viewers": openface.viewers})
        try:
            async for message in socket:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    openface.hub.send(subscriber, _viewer_reply(message.data))
        finally:
            openface.hub.unsubscribe(subscriber)
            if not subscriber.closed:
                pump.cancel()
            await asyncio.wait([pump])
            log.info("viewer %d disconnected", connection, extra={"viewers": openface.viewers - 1})
    return socket


def _viewer_reply(data: str | bytes) -> Any:
    if is_ping(data):
        return _PONG
    return ErrorMessage(message='viewer sockets are read-only: the only message is {"type":"ping"}')


# --- agents -------------------------------------------------------------------------------


async def agent_socket(request: web.Request) -> web.StreamResponse:
    openface = request.app[OPENFACE_KEY]
    encoding = socket_encoding(request)
    limits = openface.config.limits
    with openface.agent_slot():
        socket = web.WebSocketResponse(
            heartbeat=HEARTBEAT_S,
            max_msg_size=limits.agent_message_max_bytes * _AGENT_FRAME_CAP_FACTOR,
        )
        await socket.prepare(request)
        connection = next(_connection_ids)
        key = f"agent-{connection}"
        opcode = frame_type(encoding)
        openface.agent_connected(socket)
        log.info("agent %d connected", connection, extra={"agents": openface.agents})
        yielded = time.perf_counter()
        try:
            async for message in socket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                reply = agent_message(openface, key, message.data)
                if reply is not None:
                    await socket.send_frame(encode(reply, encoding), opcode)
                # Messages already read come without a wait, and each may be a broadcast to
                # every viewer (0.35 ms of CPU for 100 on the dev VM): after a stall, one
                # step would send the whole backlog while the loop waits. Every
                # AGENT_STEP_S the rest of the daemon gets in. Not after every message: with
                # slow viewers each message would then wake every viewer's pump, one
                # message each, where a few at a time keep up.
                if time.perf_counter() - yielded > AGENT_STEP_S:
                    await asyncio.sleep(0)
                    yielded = time.perf_counter()
        except ConnectionError:
            pass  # the agent left while we answered
        finally:
            openface.agent_disconnected(socket)
            log.info("agent %d disconnected", connection, extra={"agents": openface.agents})
    return socket


def agent_message(openface: OpenFace, key: str, data: str | bytes) -> Any:
    """Handle one agent message; the reply to send, if any."""
    if openface.agent_limiter.hit(key) > 0:
        return ErrorMessage(message="Rate limited")
    raw = data.encode() if isinstance(data, str) else data
    limit = openface.config.limits.agent_message_max_bytes
    if len(raw) > limit:
        return ErrorMessage(message=f"message too large: {len(raw)} bytes, limit {limit}")
    encoding: Literal["json", "msgpack"] = "json" if isinstance(data, str) else "msgpack"
    try:
        update = decoder(StateUpdate, encoding).decode(raw)
    except msgspec.ValidationError as exc:
        return _error(problem_of(exc, StateUpdate, raw, encoding))
    except msgspec.DecodeError as exc:
        name = "JSON" if encoding == "json" else "msgpack"
        return ErrorMessage(message=f"message is not valid {name}: {exc}")
    if update.type == "ping":
        return _PONG
    try:
        openface.apply(update)
    except InvalidUpdate as exc:
        return _error(exc.problem)
    return None


# --- event stream -------------------------------------------------------------------------


async def event_stream(request: web.Request) -> web.StreamResponse:
    openface = request.app[OPENFACE_KEY]
    transport = request.transport
    with openface.viewer_slot(request[CLIENT_KEY].address):
        response = await sse_response(request)
        connection = next(_connection_ids)
        subscriber = openface.hub.subscribe("sse", openface.greeting())

        async def finish(code: int, reason: str) -> None:
            pass  # returning from the handler ends the stream

        runner = Pump(subscriber, response.write, finish, transport, keepalive=_KEEPALIVE)
        pump = runner.task = openface.spawn(runner.run(), f"face-pump-events-{connection}")
        try:
            await asyncio.wait([pump])
        finally:
            openface.hub.unsubscribe(subscriber)
            if not pump.done():
                pump.cancel()
                await asyncio.wait([pump])
    return response
