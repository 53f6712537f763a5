"""One writer, many readers: the fan-out of a stream of messages to its subscribers.

Owns: encoding each published message once per (encoding, fields) group in use — JSON,
msgpack, SSE framing of the JSON; ``fields`` keeps only those keys — never once per
subscriber, and handing the same bytes object to every subscriber of the group; the two
subscriber policies; the in-process ``observers``. Does not own: what is published
(faced.openface writes the Open Face stream, faced.live the tracking results), or the
connections (faced.api.face_sockets and faced.api.tracking drain subscribers into them).
Why: a slow or dead reader must delay no one else and hold no memory, and encoding per
client is what a box with many viewers cannot afford.

Two policies, chosen per subscriber:

* ``Subscriber`` (every message, in order): a bounded queue (messages and bytes) drained
  from its reader's own task. A subscriber whose queue is full is too slow: it is closed
  with ``POLICY_VIOLATION`` (1008), its queue dropped at once, and ``slow_disconnects`` counts it;
  its owner's ``on_close`` interrupts a send stuck on a full socket. It may offer a
  synchronous fast path (``write_now``) used while its queue is empty, which spares a task
  wake-up per message and viewer.
* ``LatestSubscriber`` (latest wins): one slot; a newer message replaces an unsent one
  (counted in ``skipped``), and a per-subscriber rate cap skips messages that come sooner
  than its interval. A slow reader costs nothing and is never too slow for the hub; its
  owner decides when a stuck send ends the connection (``disconnect``).

``observers`` (a faced.listeners.Listeners) are given each published message object
before it is encoded; they must be quick and must not publish.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final, cast

import msgspec
from aiohttp import WSCloseCode

from faced.api.codec import StreamEncoding, encode, json_encoder, msgpack_encoder, sse_event
from faced.listeners import Listeners

log = logging.getLogger(__name__)

Encoding = StreamEncoding
ENCODINGS: Final[tuple[Encoding, ...]] = ("json", "msgpack", "sse")
Fields = frozenset[str] | None
"""The keys a subscriber keeps of each message (None: the whole message)."""
GroupKey = tuple[Encoding, Fields]


class _Subscription:
    """What both policies share: the encoding and fields a reader gets, waiting for a
    message, and closing (the reader wakes, the owner hears of it)."""

    __slots__ = (
        "_waiter",
        "close_code",
        "close_reason",
        "closed",
        "encoding",
        "fields",
        "on_close",
    )

    def __init__(self, encoding: Encoding, fields: Fields) -> None:
        self.encoding: Encoding = encoding
        self.fields = fields
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.close_code: int = WSCloseCode.GOING_AWAY
        self.close_reason = ""
        self.on_close: Callable[[], object] | None = None

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _drop(self) -> None:
        """Forget what is waiting to be sent (the subscription is closing)."""
        raise NotImplementedError

    def close(self, code: int, reason: str) -> None:
        """End the subscription: drop what is unsent, wake the reader, tell the owner."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_reason = reason
        self._drop()
        _wake(self._waiter)
        if self.on_close is not None:
            self.on_close()


class Subscriber(_Subscription):
    """One reader's bounded queue of encoded messages: every message, in order."""

    __slots__ = ("_bytes", "_items", "_max_bytes", "_max_messages", "write_now")

    def __init__(
        self, encoding: Encoding, max_messages: int, max_bytes: int, fields: Fields = None
    ) -> None:
        super().__init__(encoding, fields)
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self.write_now: Callable[[bytes], bool] | None = None
        """Optional fast path: hand ``data`` to the connection at once, without waking the
        reader's task; returns False when it cannot (then the message is queued)."""

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, data: bytes, now: float = 0.0) -> bool:
        """Queue ``data``; False (and nothing queued) when the queue is full."""
        del now  # every message counts: no rate cap
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
        _wake(self._waiter)
        return True

    async def next(self) -> bytes | None:
        """The next message, waiting for one; None once closed."""
        while not self._items:
            if self.closed:
                return None
            await self._wait()
        data = self._items.popleft()
        self._bytes -= len(data)
        return data

    def _drop(self) -> None:
        self._items.clear()
        self._bytes = 0


class LatestSubscriber(_Subscription):
    """One reader's single slot: the newest message not yet taken, at most its rate."""

    __slots__ = ("min_interval_s", "next_due", "pending", "sent", "skipped")

    def __init__(self, encoding: Encoding, fields: Fields = None, min_interval_s: float = 0.0):
        super().__init__(encoding, fields)
        self.min_interval_s = min_interval_s
        self.pending: bytes | None = None
        self.next_due = -float("inf")
        self.skipped = 0
        """Messages replaced by a newer one before the reader took them."""
        self.sent = 0
        """Messages the reader took (``next``)."""

    def __len__(self) -> int:
        return 0 if self.pending is None else 1

    def offer(self, data: bytes, now: float) -> bool:
        """Keep ``data`` as the newest message unless it comes sooner than the rate cap
        allows (``now``: monotonic seconds). Never too slow: always True."""
        if self.closed:
            return True
        interval = self.min_interval_s
        # Over the rate cap: the reader gets a later message instead. A tenth of an
        # interval of slack keeps capture jitter from dropping messages at an exact match
        # (camera 30 fps, cap 30/s); the schedule advances by whole intervals, so the
        # average rate never exceeds the cap.
        if now < self.next_due - 0.1 * interval:
            return True
        self.next_due = max(self.next_due + interval, now + 0.9 * interval)
        if self.pending is not None:
            self.skipped += 1  # the reader is behind: the newer message replaces the old
        self.pending = data
        _wake(self._waiter)
        return True

    async def next(self) -> bytes | None:
        """The newest message, waiting for one; None once closed."""
        while self.pending is None:
            if self.closed:
                return None
            await self._wait()
        data, self.pending = self.pending, None
        self.sent += 1
        return data

    def _drop(self) -> None:
        self.pending = None


AnySubscriber = Subscriber | LatestSubscriber


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Hub:
    """Subscribers grouped by (encoding, fields); each message encoded once per group."""

    def __init__(self, *, max_messages: int, max_bytes: int) -> None:
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._groups: dict[GroupKey, set[AnySubscriber]] = {}
        self.published = 0
        self.slow_disconnects = 0
        self.observers: Listeners[Any] = Listeners("hub observer")

    def __len__(self) -> int:
        return sum(len(group) for group in self._groups.values())

    def subscribe(
        self, encoding: Encoding, first: Iterable[Any] = (), *, fields: Fields = None
    ) -> Subscriber:
        """A new subscriber whose queue starts with ``first`` (e.g. the current state).

        Nothing awaits between queueing ``first`` and joining, so no broadcast can slip
        in between: the reader sees the snapshot, then every later message, in order.
        """
        subscriber = Subscriber(encoding, self._max_messages, self._max_bytes, fields)
        for message in first:
            subscriber.offer(encode(_only(message, fields), encoding))
        self._join(subscriber)
        return subscriber

    def subscribe_latest(
        self, encoding: Encoding, *, fields: Fields = None, max_rate_hz: float = math.inf
    ) -> LatestSubscriber:
        """A new latest-wins subscriber that takes at most ``max_rate_hz`` messages a second."""
        subscriber = LatestSubscriber(encoding, fields, 1.0 / max_rate_hz)
        self._join(subscriber)
        return subscriber

    def _join(self, subscriber: AnySubscriber) -> None:
        self._groups.setdefault((subscriber.encoding, subscriber.fields), set()).add(subscriber)

    def unsubscribe(self, subscriber: AnySubscriber) -> None:
        key = (subscriber.encoding, subscriber.fields)
        group = self._groups.get(key)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._groups[key]  # fields are the clients' choice: keep no empty groups

    def send(self, subscriber: Subscriber, message: Any) -> None:
        """Queue a message for one subscriber only (a pong, an error)."""
        if not subscriber.offer(encode(_only(message, subscriber.fields), subscriber.encoding)):
            self._too_slow([subscriber])

    def publish(self, message: Any) -> None:
        """Encode ``message`` once per (encoding, fields) in use and offer it to every
        subscriber."""
        self.published += 1
        self.observers(message)
        if not self._groups:
            return  # nobody reading: nothing to encode
        now = time.monotonic()
        slow: list[AnySubscriber] = []
        trimmed: dict[Fields, Any] = {None: message}
        builtins: dict[str, Any] | None = None
        json_data: dict[Fields, bytes] = {}
        for (encoding, fields), group in self._groups.items():
            part = trimmed.get(fields)
            if part is None and fields is not None:
                if builtins is None:
                    builtins = cast(dict[str, Any], msgspec.to_builtins(message))
                part = trimmed[fields] = {k: v for k, v in builtins.items() if k in fields}
            if encoding == "msgpack":
                data = msgpack_encoder.encode(part)
            else:
                json_part = json_data.get(fields)
                if json_part is None:
                    json_part = json_data[fields] = json_encoder.encode(part)
                data = sse_event(json_part) if encoding == "sse" else json_part
            for subscriber in group:
                if not subscriber.offer(data, now):
                    slow.append(subscriber)
        if slow:
            self._too_slow(slow)

    def disconnect(self, subscriber: AnySubscriber, code: int, reason: str, *, slow: bool) -> None:
        """End one subscription (``slow``: counted in ``slow_disconnects``)."""
        self.unsubscribe(subscriber)
        if slow:
            self.slow_disconnects += 1
        subscriber.close(code, reason)

    def _too_slow(self, subscribers: list[AnySubscriber]) -> None:
        for subscriber in subscribers:
            log.warning(
                "viewer too slow: disconnected with %d messages queued",
                len(subscriber),
                extra={"encoding": subscriber.encoding},
            )
            self.disconnect(
                subscriber,
                WSCloseCode.POLICY_VIOLATION,
                "too slow: messages were piling up",
                slow=True,
            )

    def close_all(
        self, code: int = WSCloseCode.GOING_AWAY, reason: str = "server shutting down"
    ) -> None:
        groups = list(self._groups.values())
        self._groups.clear()
        for group in groups:
            for subscriber in group:
                subscriber.close(code, reason)


def _only(message: Any, fields: Fields) -> Any:
    """``message`` with only ``fields`` kept (all of it when None)."""
    if fields is None:
        return message
    builtins = cast(dict[str, Any], msgspec.to_builtins(message))
    return {k: v for k, v in builtins.items() if k in fields}


__all__ = [
    "ENCODINGS",
    "Encoding",
    "Fields",
    "Hub",
    "LatestSubscriber",
    "Subscriber",
]
