"""The face-state model: what the face shows, and how updates and time change it.

Owns: the face's state and its rules. Pure: no I/O, no event loop, injectable clocks.
It merges partial updates (clamping numbers into the ranges faced.schemas.face_state
declares), keeps ``text``/``detail`` ephemeral (in the broadcast that carries them, then
cleared), records the history ring, counts audio sequences, and decides the timed
transitions: the idle timeout (no update for ``idle_timeout_s`` → idle + neutral;
sleeping and waiting are exempt) and auto-sleep (``auto_sleep_s`` after the last agent
disconnects → sleeping; the first agent to connect wakes the face to idle).

Every method that changes the face returns the ``StateMessage`` to broadcast; the caller
(faced.openface) publishes it. Invalid input raises ``InvalidUpdate`` before anything
changes. Does not own: the ranges and the wire types (faced.schemas.face_state), publishing,
timers' tasks or admission (faced.openface). Why apart: the protocol's behaviour is tested
call by call with a fake clock, without sockets.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

import msgspec
from msgspec import UNSET

from faced.schemas.face_state import (
    CLAMPS,
    LOOK_AT_CLAMPS,
    Clamp,
    DetailEntry,
    DetailShown,
    FaceState,
    HistoryEntry,
    LookAt,
    LookAtUpdate,
    PersonEntry,
    PersonSeen,
    PersonSeenEvent,
    Problem,
    StateChange,
    StateEntry,
    StateMessage,
    StateUpdate,
    TextEntry,
    TextShown,
)

# States the idle timeout leaves alone: the agent said it will be a while.
IDLE_EXEMPT: Final = frozenset({"sleeping", "waiting"})

# StateUpdate's value fields (not ``type``; not a subclass's extras such as expectAudio),
# as (name, wire name, clamping range or None): an update is read in one pass over
# ``astuple(update)`` (most values UNSET) instead of one getattr a field.
_UPDATE_FIELDS: Final = tuple(
    (field.name, field.encode_name, CLAMPS.get(field.name))
    for field in msgspec.structs.fields(StateUpdate)
    if field.name != "type"
)
_PLANS: Final[dict[type, tuple[tuple[int, str, str, Clamp | None], ...]]] = {}
"""Update type -> _UPDATE_FIELDS with each field's position in that type's astuple (a
subclass may order its fields differently). One entry per StateUpdate class."""


def _plan(kind: type[StateUpdate]) -> tuple[tuple[int, str, str, Clamp | None], ...]:
    plan = _PLANS.get(kind)
    if plan is None:
        position = {name: index for index, name in enumerate(kind.__struct_fields__)}
        plan = _PLANS[kind] = tuple(
            (position[name], name, wire_name, limits) for name, wire_name, limits in _UPDATE_FIELDS
        )
    return plan


class InvalidUpdate(ValueError):
    """An update the schema admits but the model cannot use (NaN); nothing was changed."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _clamp(field: str, value: float, limits: Clamp) -> float:
    if math.isnan(value):
        low, high = f"{limits.low:g}", f"{limits.high:g}"
        raise InvalidUpdate(
            Problem(
                f"invalid value for '{field}': NaN; expected a number from {low} to {high}",
                field=field,
                expected=f"a number from {low} to {high}",
            )
        )
    clamped = min(max(value, limits.low), limits.high)
    return round(clamped) if limits.integer else float(clamped)


def message_of(state: FaceState) -> StateMessage:
    """The broadcast form of a state: the same fields under ``"type": "state"``."""
    return StateMessage(**msgspec.structs.asdict(state))


class FaceModel:
    def __init__(
        self,
        *,
        history_size: int = 200,
        idle_timeout_s: float = 30.0,
        auto_sleep_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self._wall_clock = wall_clock
        self._idle_timeout_s = idle_timeout_s
        self._auto_sleep_s = auto_sleep_s
        self._state = FaceState()
        # The state as broadcast ("type": "state"), kept in step with ``_state`` (the same
        # changes go to both): building it from the state on every update cost as much as
        # the merge itself.
        self._message = StateMessage()
        self._history: deque[HistoryEntry] = deque(maxlen=history_size)
        self._last_update = clock()
        self._agents = 0
        self._sleep_at: float | None = None
        self.audio_seq = 0

    # --- reading ------------------------------------------------------------------------

    @property
    def state(self) -> FaceState:
        """The current state (text and detail already cleared). Do not mutate."""
        return self._state

    @property
    def agents(self) -> int:
        return self._agents

    def snapshot(self) -> StateMessage:
        """The current state as broadcast. Do not mutate."""
        return self._message

    def history(self) -> list[HistoryEntry]:
        return list(self._history)

    # --- updates ------------------------------------------------------------------------

    def apply(self, update: StateUpdate, *, touch: bool = True) -> StateMessage:
        """Merge a partial update; returns the message to broadcast (carrying text/detail,
        which the stored state then forgets). ``type: "reset"`` resets instead.
        ``touch=False`` (the camera's gaze follow, faced.face.follow) leaves the idle timer
        alone: a person in front of the camera is not an agent speaking."""
        if update.type == "reset":
            return self.reset()
        changes = self._changes(update)
        previous = self._state
        if changes:
            shown = msgspec.structs.replace(previous, **changes)
            message = msgspec.structs.replace(self._message, **changes)
            if "state" in changes or "text" in changes or "detail" in changes:
                self._record(previous, shown, changes)
        else:
            shown, message = previous, self._message
        if shown.text is not None or shown.detail is not None:
            self._state = msgspec.structs.replace(shown, text=None, detail=None)
            self._message = msgspec.structs.replace(message, text=None, detail=None)
        else:
            self._state, self._message = shown, message
        if touch:
            self._last_update = self.clock()
        return message

    def speak(self, update: StateUpdate | None) -> tuple[int, StateMessage]:
        """Start a new audio sequence: merge ``update`` with ``state`` defaulting to
        speaking. Returns the new sequence number and the state to broadcast."""
        if update is None:
            update = StateUpdate(state="speaking")
        else:
            update = msgspec.structs.replace(
                update,
                type=UNSET,  # a speak body is never a reset
                state="speaking" if update.state is UNSET else update.state,
            )
        message = self.apply(update)  # may raise: then the sequence stays as it was
        self.audio_seq += 1
        return self.audio_seq, message

    def reset(self) -> StateMessage:
        previous = self._state
        self._state = FaceState()
        self._message = StateMessage()
        self._record(previous, self._state, {"state": self._state.state})
        self._last_update = self.clock()
        return self._message

    def _changes(self, update: StateUpdate) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        values = msgspec.structs.astuple(update)
        plan = _PLANS.get(type(update)) or _plan(type(update))
        for index, name, wire_name, limits in plan:
            value = values[index]
            if value is UNSET:
                continue
            if isinstance(value, LookAtUpdate):
                value = self._look_at(value)
            elif (
                limits is not None
                and value is not None
                # A float already in range stays as it is (NaN fails the test: refused).
                and (
                    limits.integer
                    or type(value) is not float
                    or not limits.low <= value <= limits.high
                )
            ):
                value = _clamp(wire_name, value, limits)
            changes[name] = value
        return changes

    def _look_at(self, update: LookAtUpdate) -> LookAt:
        current = self._state.look_at
        x = current.x if update.x is UNSET else _clamp("lookAt.x", update.x, LOOK_AT_CLAMPS["x"])
        y = current.y if update.y is UNSET else _clamp("lookAt.y", update.y, LOOK_AT_CLAMPS["y"])
        return LookAt(x=x, y=y)

    def _record(self, previous: FaceState, shown: FaceState, changes: dict[str, Any]) -> None:
        state_changed = "state" in changes and shown.state != previous.state
        text, detail = changes.get("text"), changes.get("detail")
        if not (state_changed or text or detail):
            return  # most updates: nothing for the history (and no clock to read)
        ts = round(self._wall_clock() * 1000)
        if state_changed:
            change = StateChange(state=shown.state, prev=previous.state, emotion=shown.emotion)
            self._history.append(StateEntry(ts=ts, data=change))
        if text:
            shown_text = TextShown(text=shown.text or "", state=shown.state, emotion=shown.emotion)
            self._history.append(TextEntry(ts=ts, data=shown_text))
        if detail:
            self._history.append(DetailEntry(ts=ts, data=DetailShown(detail=shown.detail or "")))

    def record_person(self, event: PersonSeenEvent, duration: float | None) -> None:
        """Note a presence or perception event (faced.live) in the history ring."""
        ts = round(self._wall_clock() * 1000)
        self._history.append(PersonEntry(ts=ts, data=PersonSeen(event=event, duration=duration)))

    # --- agents and time ----------------------------------------------------------------

    def agent_connected(self) -> StateMessage | None:
        """Count an agent in; the first one wakes a sleeping face."""
        self._agents += 1
        self._sleep_at = None
        if self._agents == 1 and self._state.state == "sleeping":
            return self._transition(state="idle")
        return None

    def agent_disconnected(self) -> None:
        self._agents = max(0, self._agents - 1)
        if self._agents == 0 and self._auto_sleep_s > 0:
            self._sleep_at = self.clock() + self._auto_sleep_s

    def next_deadline(self) -> float | None:
        """When ``tick`` may next have something to do (clock seconds), or None."""
        sleep_at, idle_at = self._sleep_at, self._idle_deadline()
        if sleep_at is None or idle_at is None:
            return idle_at if sleep_at is None else sleep_at
        return min(sleep_at, idle_at)

    def tick(self) -> list[StateMessage]:
        """Apply whatever timed transition is due; the messages to broadcast."""
        now = self.clock()
        messages: list[StateMessage] = []
        if self._sleep_at is not None and now >= self._sleep_at:
            self._sleep_at = None
            if self._agents == 0 and self._state.state != "sleeping":
                messages.append(
                    self._transition(state="sleeping", emotion="neutral", amplitude=0.0)
                )
        idle_at = self._idle_deadline()
        if idle_at is not None and now >= idle_at:
            messages.append(
                self._transition(state="idle", emotion="neutral", amplitude=0.0, text=None)
            )
        return messages

    def _idle_deadline(self) -> float | None:
        state = self._state
        if self._idle_timeout_s <= 0 or state.state in IDLE_EXEMPT:
            return None
        if state.state == "idle" and state.emotion == "neutral" and state.amplitude == 0.0:
            return None  # already at rest
        return self._last_update + self._idle_timeout_s

    def _transition(self, **changes: Any) -> StateMessage:
        previous = self._state
        self._state = msgspec.structs.replace(previous, **changes)
        self._message = msgspec.structs.replace(self._message, **changes)
        self._record(previous, self._state, changes)
        self._last_update = self.clock()
        return self._message
