"""One writer, many readers: the fan-out from the face model to viewers.

Owner: the Open Face protocol (issue 3). The writer (faced.api.openface) calls
``Hub.publish(message)``; the hub encodes the message once per encoding in use (JSON,
msgpack, and SSE framing of the JSON) — never once per client — and appends the same bytes
object to each subscriber's bounded queue. Each subscriber (a viewer socket, an event
stream) drains its queue from its own task, so a slow or dead reader delays no one else.
A subscriber may offer a synchronous fast path (``write_now``) used while its queue is
empty, which spares a task wake-up per message and viewer.

A subscriber whose queue is full (messages or bytes) is too slow: it is closed with
``POLICY_VIOLATION`` (1008), its queue is dropped at once (so it holds no memory), and
``slow_disconnects`` counts it. Its owner's ``on_close`` callback interrupts a send that
is stuck on a full socket.

In-process readers (the display policy, faced.display) are ``observers``: callables given
each published message object before it is encoded. They must be quick and must not
publish; one that raises is logged and does not stop the broadcast.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiohttp import WSCloseCode

from faced.api.codec import StreamEncoding, encode, json_encoder, msgpack_encoder, sse_event

log = logging.getLogger(__name__)

Encoding = StreamEncoding
ENCODINGS: Final[tuple[Encoding, ...]] = ("json", "msgpack", "sse")


class Subscriber:
    """One reader's bounded queue of encoded messages."""

    __slots__ = (
        "_bytes",
        "_items",
        "_max_bytes",
        "_max_messages",
        "_waiter",
        "close_code",
        "close_reason",
        "closed",
        "encoding",
        "on_close",
        "write_now",
    )

    def __init__(self, encoding: Encoding, max_messages: int, max_bytes: int) -> None:
        self.encoding: Encoding = encoding
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.close_code: int = WSCloseCode.GOING_AWAY
        self.close_reason = ""
        self.on_close: Callable[[], object] | None = None
        self.write_now: Callable[[bytes], bool] | None = None
        """Optional fast path: hand ``data`` to the connection at once, without waking the
        reader's task; returns False when it cannot (then the message is queued)."""

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, data: bytes) -> bool:
        """Queue ``data``; False (and nothing queued) when the queue is full."""
        if self.closed:
            return True  # being torn down; not a slowness to report
        # Nothing queued means nothing to overtake: the connection may take it directly.
        if not self._items and self.write_now is not None and self.write_now(data):
            return True
        size = len(data)
        if len(self._items) >= self._max_messages or (
            self._items and self._bytes + size > self._max_bytes
        ):
            return False
        self._items.append(data)
        self._bytes += size
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    async def next(self) -> bytes | None:
        """The next message, waiting for one; None once closed."""
        while not self._items:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._items.popleft()
        self._bytes -= len(data)
        return data

    def close(self, code: int, reason: str) -> None:
        """End the subscription: drop what is queued, wake the reader, tell the owner."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self._items.clear()
        self._bytes = 0
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.on_close is not None:
            self.on_close()


class Hub:
    def __init__(self, *, max_messages: int, max_bytes: int) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._groups: dict[Encoding, set[Subscriber]] = {e: set() for e in ENCODINGS}
        self.published = 0
        self.slow_disconnects = 0
        self.observers: list[Callable[[Any], None]] = []

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def subscribe(self, encoding: Encoding, first: Iterable[Any] = ()) -> Subscriber:
        """A new subscriber whose queue starts with ``first`` (e.g. the current state).

        Nothing awaits between queueing ``first`` and joining, so no broadcast can slip
        in between: the reader sees the snapshot, then every later message, in order.
        """
        subscriber = Subscriber(encoding, self._max_messages, self._max_bytes)
        for message in first:
            subscriber.offer(encode(message, encoding))
        self._groups[encoding].add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._groups[subscriber.encoding].discard(subscriber)

    def send(self, subscriber: Subscriber, message: Any) -> None:
        """Queue a message for one subscriber only (a pong, an error)."""
        if not subscriber.offer(encode(message, subscriber.encoding)):
            self._too_slow([subscriber])

    def publish(self, message: Any) -> None:
        """Encode ``message`` once per encoding in use and queue it for every subscriber."""
        self.published += 1
        for observer in self.observers:
            try:
                observer(message)
            except Exception:
                log.exception("a hub observer failed")
        if not (self._groups["json"] or self._groups["msgpack"] or self._groups["sse"]):
            return  # nobody reading: nothing to encode
        slow: list[Subscriber] = []
        json_data: bytes | None = None
        for encoding, group in self._groups.items():
            if not group:
                continue
            if encoding == "msgpack":
                data = msgpack_encoder.encode(message)
            else:
                if json_data is None:
                    json_data = json_encoder.encode(message)
                data = sse_event(json_data) if encoding == "sse" else json_data
            for subscriber in group:
                if not subscriber.offer(data):
                    slow.append(subscriber)
        if slow:
            self._too_slow(slow)

    def _too_slow(self, subscribers: list[Subscriber]) -> None:
        for subscriber in subscribers:
            self.unsubscribe(subscriber)
            self.slow_disconnects += 1
            log.warning(
                "viewer too slow: disconnected with %d messages queued",
                len(subscriber),
                extra={"encoding": subscriber.encoding},
            )
            subscriber.close(WSCloseCode.POLICY_VIOLATION, "too slow: messages were piling up")

    def close_all(
        self, code: int = WSCloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        for group in self._groups.values():
            subscribers = list(group)
            group.clear()
            for subscriber in subscribers:
                subscriber.close(code, reason)
