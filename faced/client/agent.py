"""The agent socket of the Python client: state updates over ``/ws/agent``, confirmed.

Owns: ``AgentSocket`` (one connection, reopened on the next ``send`` after it was lost) and
turning the socket's error replies into ``FacedError``. Does not own connecting (the
client's ``_connect``, passed in) or the wire (faced.client.wire). Why a confirmation: the
daemon answers a good update with nothing, so ``send`` follows it with a ping; an error
reply before the pong is that update's refusal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

import aiohttp
import msgspec
from aiohttp import WSMsgType

from faced.client.wire import Encoding, FacedError, connection_error, decode, wire_fields
from faced.schemas.face_state import ErrorMessage, PongMessage


class AgentSocket:
    """One ``/ws/agent`` connection; reconnects on the next ``send`` if it was lost."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[aiohttp.ClientWebSocketResponse]],
        encoding: Encoding,
        timeout_s: float,
    ) -> None:
        self._connect = connect
        self.encoding: Encoding = encoding
        self.timeout_s = timeout_s
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if self._socket is None or self._socket.closed:
            self._socket = await self._connect()

    async def close(self) -> None:
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await socket.close()

    async def send(self, **fields: Any) -> None:
        """Send a state update (Python or wire field names, as ``FaceClient.set_state``)
        and wait until the daemon has taken it: a refused update raises FacedError (400
        naming the field, 413 too large, 429 rate limited). Each send is two messages of
        the agent's rate budget (the update and a ping that confirms it)."""
        update = wire_fields(fields)
        async with self._lock:
            for attempt in (1, 2):
                await self.open()
                try:
                    await self._exchange(update)
                    return
                except FacedError as exc:
                    if exc.status is not None or attempt == 2:
                        raise
                    await self.close()  # lost (e.g. the daemon restarted): once more

    async def _exchange(self, update: dict[str, Any]) -> None:
        socket = self._socket
        assert socket is not None
        encoding = self.encoding
        try:
            async with asyncio.timeout(self.timeout_s):
                for message in (update, {"type": "ping"}):
                    if encoding == "msgpack":
                        await socket.send_bytes(msgspec.msgpack.encode(message))
                    else:
                        await socket.send_str(msgspec.json.encode(message).decode())
                while True:
                    reply = await socket.receive()
                    if reply.type == WSMsgType.TEXT:
                        answer: PongMessage | ErrorMessage = decode(reply.data, _AgentReply, "json")
                    elif reply.type == WSMsgType.BINARY:
                        answer = decode(reply.data, _AgentReply, "msgpack")
                    else:
                        raise FacedError(None, "WS ws/agent: the connection closed")
                    if isinstance(answer, PongMessage):
                        return
                    raise FacedError(
                        _socket_status(answer.message), answer.message, _details(answer)
                    )
        except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
            raise connection_error(exc, "WS ws/agent") from None


_AgentReply = PongMessage | ErrorMessage


def _socket_status(message: str) -> int:
    """The HTTP status a socket's error reply stands for (the socket has none)."""
    if message.startswith("Rate limited"):
        return 429
    if message.startswith("message too large"):
        return 413
    return 400


def _details(error: ErrorMessage) -> dict[str, Any]:
    return {
        name: value
        for name in ("field", "allowed", "expected")
        if (value := getattr(error, name)) is not None
    }
