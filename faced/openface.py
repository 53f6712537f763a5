"""The Open Face service: the single writer between the clients and the viewers.

Owns: the face model (faced.face) and the hub every viewer reads (faced.hub): every change
to the face, presence, audio, the viewer config — whoever causes it — goes through here to
the hub; the admission of viewers and agents within their limits (503 beyond); the agents'
rate limit; the idle/auto-sleep timer; closing everything with 1001 on shutdown. Does not
own: the routes and sockets (faced.api.face_routes, faced.api.face_sockets), nor the
readers that react to the stream (gaze follow, the display policy, the speaker: hub
observers and ``agent_listeners``). Why: one writer keeps every viewer's view the same
and ordered, and the face's history whole.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

from aiohttp import WSCloseCode, web

from faced.api.errors import ApiError
from faced.api.ratelimit import IPAddress, RateLimiter, is_loopback, rate_key
from faced.config import Config
from faced.face import FaceModel
from faced.hub import Hub
from faced.listeners import Listeners
from faced.schemas.face_state import (
    PRESENCE_EVENTS,
    AudioDoneMessage,
    AudioMessage,
    AudioSeqMessage,
    HistoryEntry,
    HistoryMessage,
    PersonEntry,
    StateMessage,
    StateUpdate,
)
from faced.schemas.person import PersonEvent
from faced.schemas.presets import ConfigMessage
from faced.schemas.tracking import PresenceMessage

log = logging.getLogger(__name__)

T = TypeVar("T")

# Room for the JSON around a base64 audio chunk: {"data": "…", "seq": N}.
AUDIO_ENVELOPE_BYTES: Final = 1024
# A subscriber may hold this many audio-sized messages before it counts as too slow.
_QUEUED_AUDIO_CHUNKS: Final = 4
_RESTART_DELAY_S: Final = 1.0
AUDIO_ACTIVE_S: Final = 10.0
"""Audio counts as playing this long after its last chunk when no audio-done follows."""
CLOSE_TIMEOUT_S: Final = 1.0
"""How long a closing handshake may take before the connection is simply dropped."""
LOOPBACK_VIEWER_PLACES: Final = 4
"""Viewer places kept for loopback clients (the kiosk's viewer page, a local dashboard or
bridge; 4 leaves room for a page that reconnects before its old socket is gone)."""


def loopback_reserve(max_viewers: int) -> int:
    """Places of ``max_viewers`` that clients off the box cannot take: never more than half,
    so a small ``max_viewers`` still serves the network."""
    return min(LOOPBACK_VIEWER_PLACES, max_viewers // 2)


async def close_socket(
    socket: web.WebSocketResponse, code: int, reason: str, request: web.Request | None = None
) -> None:
    """Close with ``code``; a peer that does not finish the handshake in time is dropped."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await socket.close(code=code, message=reason.encode())
    except TimeoutError:
        transport = request.transport if request is not None else None
        if transport is not None:
            transport.abort()
    except (ConnectionError, RuntimeError):
        pass  # already gone


class OpenFace:
    """The live protocol: one face model, one hub, the agents, the timers."""

    def __init__(self, config: Config) -> None:
        self.config = config
        limits = config.limits
        self.model = FaceModel(
            history_size=config.face.history_size,
            idle_timeout_s=config.face.idle_timeout_s,
            auto_sleep_s=config.face.auto_sleep_s,
        )
        largest_message = 4 * math.ceil(limits.audio_max_bytes / 3) + AUDIO_ENVELOPE_BYTES
        self.hub = Hub(
            max_messages=limits.viewer_queue_messages,
            max_bytes=max(_QUEUED_AUDIO_CHUNKS * largest_message, 1024 * 1024),
        )
        self.agent_limiter = RateLimiter(
            limits.agent_messages_per_s, max(1, math.ceil(limits.agent_messages_per_s))
        )
        self.agent_sockets: set[web.WebSocketResponse] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self._viewer_slots = 0
        self._remote_viewers = 0
        """Viewer places held by clients off the box (not loopback)."""
        self._viewers_by_client: Counter[str] = Counter()
        """Viewer places per client off the box (rate_key: IPv4 address, IPv6 /64)."""
        self._agent_slots = 0
        self._wake = asyncio.Event()
        self._timer_deadline = math.inf
        self.agent_listeners: Listeners[StateUpdate] = Listeners("agent-update")
        """Told of every agent update (HTTP, sockets, speak): gaze follow's hold time, the
        display policy's activity."""
        self._audio_until = -math.inf
        self._person_began: dict[str, int] = {}
        self.audio_intake: Callable[[int, bytes], None] | None = None
        """The box's speaker (faced.voice), when faced owns one: takes each
        /api/audio chunk before the viewers get it, and raises ApiError for one it refuses
        (not a playable WAV, queue full) — then the viewers do not get it either."""

    # --- admission ----------------------------------------------------------------------

    @contextlib.contextmanager
    def viewer_slot(self, client: IPAddress | None) -> Iterator[None]:
        """Hold one of ``limits.max_viewers`` places (sockets and event streams) or 503.

        A client off the box may hold at most ``limits.viewers_per_client`` places, and all
        of them together at most ``max_viewers - loopback_reserve(max_viewers)``: the
        appliance's own screen (a loopback viewer) is then refused only when loopback
        clients themselves hold the reserved places. Loopback clients are the box's own
        software (the kiosk, local bridges), so no per-client cap applies to them; the
        total still bounds them. A Unix-socket peer (``client`` None) is local too.
        """
        limits = self.config.limits
        local = client is None or is_loopback(client)
        key = rate_key(client)
        self._admit(self._viewer_slots, limits.max_viewers, "viewers", "limits.max_viewers")
        if not local:
            remote_limit = limits.max_viewers - loopback_reserve(limits.max_viewers)
            if self._remote_viewers >= remote_limit:
                raise ApiError(
                    503,
                    f"too many viewers: {self._remote_viewers} connected from the network, "
                    f"limit {remote_limit} (limits.max_viewers, less the places kept for "
                    "the appliance's own screen)",
                    headers={"Retry-After": "5"},
                )
            held = self._viewers_by_client[key]
            if held >= limits.viewers_per_client:
                raise ApiError(
                    503,
                    f"too many viewers from {key}: {held} connected, limit "
                    f"{limits.viewers_per_client} per client (limits.viewers_per_client)",
                    headers={"Retry-After": "5"},
                )
            self._remote_viewers += 1
            self._viewers_by_client[key] += 1
        self._viewer_slots += 1
        try:
            yield
        finally:
            self._viewer_slots -= 1
            if not local:
                self._remote_viewers -= 1
                self._viewers_by_client[key] -= 1
                if not self._viewers_by_client[key]:
                    del self._viewers_by_client[key]  # only clients holding places

    @contextlib.contextmanager
    def agent_slot(self) -> Iterator[None]:
        limit = self.config.limits.max_agents
        self._admit(self._agent_slots, limit, "agents", "limits.max_agents")
        self._agent_slots += 1
        try:
            yield
        finally:
            self._agent_slots -= 1

    def _admit(self, used: int, limit: int, what: str, key: str) -> None:
        if self.closing:
            raise ApiError(503, "server shutting down")
        if used >= limit:
            raise ApiError(
                503,
                f"too many {what}: {used} connected, limit {limit} ({key})",
                headers={"Retry-After": "5"},
            )

    @property
    def viewers(self) -> int:
        return self._viewer_slots

    @property
    def agents(self) -> int:
        return self._agent_slots

    # --- the single writer --------------------------------------------------------------

    def history(self, *, camera_data: bool = False) -> list[HistoryEntry]:
        """The history ring; without ``camera_data`` (viewers, callers without the key) the
        person entries are presence only: attention and speech are the camera's."""
        entries = self.model.history()
        if camera_data:
            return entries
        return [
            entry
            for entry in entries
            if not isinstance(entry, PersonEntry) or entry.data.event in PRESENCE_EVENTS
        ]

    def greeting(self) -> list[Any]:
        """What a new viewer gets first: the state, then the history if there is any."""
        first: list[Any] = [self.model.snapshot()]
        history = self.history()
        if history:
            first.append(HistoryMessage(entries=history))
        return first

    def apply(self, update: StateUpdate) -> StateMessage:
        """Merge an agent's ``update`` and broadcast the result (InvalidUpdate: nothing
        changed)."""
        message = self.model.apply(update)
        self.hub.publish(message)
        self._reschedule()
        self._agent_wrote(update)
        return message

    def apply_camera(self, update: StateUpdate) -> StateMessage:
        """Merge an update the camera caused (gaze follow, faced.gaze_follow) and broadcast
        it like any other; it is no agent's word: it neither restarts the idle timer nor
        reaches ``agent_listeners``."""
        message = self.model.apply(update, touch=False)
        self.hub.publish(message)
        self._reschedule()
        return message

    def apply_playback(self, update: StateUpdate) -> StateMessage:
        """Merge an update the box's speaker makes while it plays an agent's audio (the
        mouth's amplitude, the state after the last sample is heard). It keeps the face busy
        (restarts the idle timer, so a long playback is not cut to idle) but is no agent's
        word: ``agent_listeners`` (gaze follow's hold) are not told."""
        message = self.model.apply(update)
        self.hub.publish(message)
        self._reschedule()
        return message

    def speak(self, update: StateUpdate | None, expect_audio: bool) -> int:
        seq, message = self.model.speak(update)
        self.hub.publish(AudioSeqMessage(seq=seq, expect_audio=expect_audio))
        self.hub.publish(message)
        self._reschedule()
        if expect_audio:
            self.audio_chunk()
        # A speak always sets a state (speaking unless the body names one): it holds all.
        self._agent_wrote(StateUpdate(state="speaking"))
        return seq

    def _agent_wrote(self, update: StateUpdate) -> None:
        self.agent_listeners(update)

    def presence(self, message: PresenceMessage) -> None:
        """Live tracking saw a person arrive, move or leave (faced.live)."""
        # Viewers get presence and position only; arrivals and departures are history.
        if message.event != "moved":
            self.model.record_person(message.event, message.duration)
        self.hub.publish(message)

    def person(self, event: PersonEvent) -> None:
        """A perception event (faced.live): attention and speech go into the history ring,
        with how long they lasted; never to the viewers."""
        kind = event.event
        if kind in ("attention_start", "speaking_start"):
            self._person_began[kind] = event.ts
            self.model.record_person(kind, None)
        elif kind in ("attention_end", "speaking_end"):
            began = self._person_began.pop(kind.replace("_end", "_start"), None)
            duration = None if began is None else round((event.ts - began) / 1000, 3)
            self.model.record_person(kind, duration)

    def viewer_config(self, message: ConfigMessage) -> None:
        """Every viewer switches to another face pack (faced.face_packs)."""
        self.hub.publish(message)

    def relay_audio(self, seq: int, audio: bytes) -> None:
        """An agent's audio chunk: the box's speaker first (it may refuse it with an
        ApiError, and then the viewers do not get it either), then every viewer."""
        if self.audio_intake is not None:
            self.audio_intake(seq, audio)
        self.audio_chunk()
        self.hub.publish(AudioMessage(data=base64.b64encode(audio).decode("ascii"), seq=seq))

    def end_audio(self, seq: int) -> None:
        """An agent's audio sequence is complete (audio-done)."""
        self.audio_done()
        self.hub.publish(AudioDoneMessage(seq=seq))

    # --- audio activity (for gaze follow's mirror: the speaker owns the mouth) -----------

    def audio_chunk(self) -> None:
        """Audio is on its way (a chunk, or a speak expecting audio)."""
        self._audio_until = self.model.clock() + AUDIO_ACTIVE_S

    def audio_done(self) -> None:
        self._audio_until = -math.inf

    @property
    def audio_playing(self) -> bool:
        """From a chunk (or a speak expecting audio) until audio-done, or ``AUDIO_ACTIVE_S``
        after the last chunk when no audio-done comes."""
        return self.model.clock() < self._audio_until

    def agent_connected(self, socket: web.WebSocketResponse) -> None:
        self.agent_sockets.add(socket)
        message = self.model.agent_connected()
        if message is not None:
            self.hub.publish(message)
        self._reschedule()

    def agent_disconnected(self, socket: web.WebSocketResponse) -> None:
        self.agent_sockets.discard(socket)
        self.model.agent_disconnected()
        self._reschedule()

    # --- timers -------------------------------------------------------------------------

    def _reschedule(self) -> None:
        # Wake the timer only when a deadline moved earlier: an ordinary update pushes the
        # idle deadline later, and the timer finds nothing due when it wakes as planned.
        deadline = self.model.next_deadline()
        if deadline is not None and deadline < self._timer_deadline:
            self._wake.set()

    async def run_timers(self) -> None:
        while True:
            deadline = self.model.next_deadline()
            self._timer_deadline = math.inf if deadline is None else deadline
            self._wake.clear()
            delay = None if deadline is None else max(0.0, deadline - self.model.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            for message in self.model.tick():
                log.info("face went %s on its own", message.state)
                self.hub.publish(message)

    def spawn(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A named task kept until it ends and cancelled at cleanup."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- lifetime -----------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The top-level /health facts."""
        return {
            "viewers": self.viewers,
            "agents": self.agents,
            "state": self.model.state.state,
            "slow_viewers_disconnected": self.hub.slow_disconnects,
        }

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the idle/auto-sleep timer as one named, supervised task; at
        cleanup every subscriber is closed and every task it keeps is cancelled."""
        del app
        timers = self.spawn(supervised("face timers", self.run_timers), "face-timers")
        yield
        self.closing = True
        self.hub.close_all()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(timers, *self.tasks, return_exceptions=True)

    async def shutdown(self, app: web.Application | None = None) -> None:
        """On shutdown: close viewer and agent sockets with 1001 and end event streams."""
        self.closing = True
        self.hub.close_all(WSCloseCode.GOING_AWAY, "server shutting down")
        closing = [
            close_socket(socket, WSCloseCode.GOING_AWAY, "server shutting down")
            for socket in list(self.agent_sockets)
        ]
        pending = [task for task in self.tasks if task.get_name().startswith("face-pump")]
        await asyncio.gather(*closing, *pending, return_exceptions=True)


async def supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run`` forever: an unexpected failure is logged and the loop restarted."""
    while True:
        try:
            await run()
        except Exception:
            log.exception("%s failed; restarting in %.0f s", name, _RESTART_DELAY_S)
            await asyncio.sleep(_RESTART_DELAY_S)


__all__ = ["OpenFace", "close_socket", "loopback_reserve", "supervised"]
