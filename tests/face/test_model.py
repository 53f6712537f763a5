"""The face-state model on its own: pure, so a fake clock drives its timers."""

from __future__ import annotations

import math

import msgspec
import pytest

from faced.face import FaceModel, InvalidUpdate, message_of
from faced.schemas.face_state import (
    CLAMPS,
    EMOTIONS,
    STATES,
    OutgoingMessage,
    SpeakRequest,
    StateMessage,
    StateUpdate,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def model(clock: FakeClock, **kwargs: float) -> FaceModel:
    options = {"idle_timeout_s": 30.0, "auto_sleep_s": 5.0, **kwargs}
    return FaceModel(clock=clock, wall_clock=lambda: 1_700_000_000.0, **options)  # type: ignore[arg-type]


def update(**fields: object) -> StateUpdate:
    return msgspec.convert(fields, StateUpdate)


def test_idle_timeout_fires_once_after_the_last_update() -> None:
    clock = FakeClock()
    face = model(clock)
    assert face.next_deadline() is None  # at rest: nothing to time
    face.apply(update(state="thinking", emotion="happy", amplitude=0.5))
    assert face.next_deadline() == 1030.0
    clock.now = 1020.0
    face.apply(update(emotion="sad"))  # an update restarts the wait
    clock.now = 1049.9
    assert face.tick() == []
    clock.now = 1050.0
    (message,) = face.tick()
    assert (message.state, message.emotion, message.amplitude) == ("idle", "neutral", 0.0)
    assert face.next_deadline() is None
    assert face.tick() == []


@pytest.mark.parametrize("exempt", ["sleeping", "waiting"])
def test_sleeping_and_waiting_are_exempt_from_the_idle_timeout(exempt: str) -> None:
    clock = FakeClock()
    face = model(clock)
    face.apply(update(state=exempt, emotion="sad"))
    assert face.next_deadline() is None
    clock.now += 3600
    assert face.tick() == []
    assert face.state.state == exempt


def test_auto_sleep_after_the_last_agent_and_wake_on_the_first() -> None:
    clock = FakeClock()
    face = model(clock, idle_timeout_s=0)
    assert face.agent_connected() is None  # awake already: nothing to announce
    assert face.agent_connected() is None
    face.agent_disconnected()
    assert face.next_deadline() is None  # one agent is still there
    face.agent_disconnected()
    assert face.next_deadline() == 1005.0
    clock.now = 1004.0
    assert face.tick() == []
    clock.now = 1005.0
    (asleep,) = face.tick()
    assert asleep.state == "sleeping"
    woken = face.agent_connected()
    assert woken is not None
    assert woken.state == "idle"
    assert [e.data.state for e in face.history()] == ["sleeping", "idle"]  # type: ignore[union-attr]


def test_an_agent_returning_in_time_cancels_auto_sleep() -> None:
    clock = FakeClock()
    face = model(clock, idle_timeout_s=0)
    face.agent_connected()
    face.agent_disconnected()
    clock.now += 4
    face.agent_connected()
    clock.now += 10
    assert face.tick() == []
    assert face.state.state == "idle"


def test_zero_disables_the_timers() -> None:
    clock = FakeClock()
    face = model(clock, idle_timeout_s=0, auto_sleep_s=0)
    face.apply(update(state="alert"))
    face.agent_connected()
    face.agent_disconnected()
    clock.now += 10_000
    assert face.next_deadline() is None
    assert face.tick() == []


def test_speak_counts_and_a_refused_update_changes_nothing() -> None:
    face = model(FakeClock())
    seq, message = face.speak(None)
    assert (seq, message.state) == (1, "speaking")
    before = face.state
    history = face.history()
    with pytest.raises(InvalidUpdate) as refused:
        face.speak(update(state="thinking", amplitude=math.nan))
    assert refused.value.problem.field == "amplitude"
    assert face.audio_seq == 1
    assert face.state == before
    assert face.history() == history
    seq, message = face.speak(update(state="reacting", type="reset"))
    assert (seq, message.state) == (2, "reacting")  # a speak body never resets


def test_nan_in_look_at_is_refused_and_infinity_clamped() -> None:
    face = model(FakeClock())
    with pytest.raises(InvalidUpdate) as refused:
        face.apply(update(lookAt={"x": math.nan}))
    assert refused.value.problem.field == "lookAt.x"
    face.apply(update(lookAt={"x": math.inf}, intensity=-math.inf))
    assert face.state.look_at.x == 1.0
    assert face.state.intensity == 0.0


def test_text_is_broadcast_once_and_recorded() -> None:
    face = model(FakeClock())
    shown = face.apply(update(text="hello", detail="step 1"))
    assert (shown.text, shown.detail) == ("hello", "step 1")
    assert (face.state.text, face.state.detail) == (None, None)
    again = face.apply(update(emotion="happy"))
    assert again.text is None
    kinds = [entry.__struct_config__.tag for entry in face.history()]
    assert kinds == ["text", "detail"]
    assert face.history()[0].ts == 1_700_000_000_000


def test_the_broadcast_form_always_matches_the_state() -> None:
    """The model keeps the broadcast message beside the state; whatever changes the face,
    the message it hands out carries the state's fields (plus text/detail when shown)."""
    clock = FakeClock()
    face = model(clock)
    # A subclass whose own field comes first in its layout (not kw_only).
    SpeakBody = msgspec.defstruct("SpeakBody", [("expect_audio", bool, True)], bases=(StateUpdate,))
    assert SpeakBody.__struct_fields__[0] == "expect_audio"

    def check(message: StateMessage | None) -> None:
        assert face.snapshot() == message_of(face.state)
        if message is not None:
            cleared = msgspec.structs.replace(message, text=None, detail=None)
            assert cleared == face.snapshot()

    check(face.apply(update(state="thinking", amplitude=2.0, lookAt={"x": 0.5})))
    check(face.apply(update(text="hi", detail="d", textDuration=10, lookAt={"y": -3})))
    check(face.apply(update()))
    body = {"emotion": "sad", "amplitude": 0.25, "expectAudio": False}
    check(face.speak(msgspec.convert(body, SpeakBody))[1])
    assert (face.state.emotion, face.state.amplitude) == ("sad", 0.25)
    check(face.speak(msgspec.convert(body, SpeakRequest))[1])
    check(face.apply(update(type="reset")))
    check(face.apply(update(color="#00ff00", progress=None, winkLeft=0.3)))
    face.agent_connected()
    face.agent_disconnected()
    clock.now += 5
    for message in face.tick():
        check(message)
    assert face.state.state == "sleeping"
    check(face.agent_connected())
    assert face.state.state == "idle"
    check(face.apply(update(emotion="happy")))
    clock.now += 60
    (message,) = face.tick()
    check(message)


def test_the_declared_ranges_and_choices_drive_the_json_schema() -> None:
    schema = msgspec.json.schema(StateUpdate)
    fields = schema["$defs"]["StateUpdate"]["properties"]
    # Clamped, not refused: the document says so, and promises no refusal (no "maximum").
    assert fields["emotionBlend"]["x-clamped"] == {"minimum": 0, "maximum": 1}
    assert "maximum" not in fields["emotionBlend"]
    assert fields["textDuration"]["x-clamped"] == {"minimum": 500, "maximum": 30000}
    assert set(fields["state"]["enum"]) == set(STATES)
    assert set(fields["emotionSecondary"]["enum"]) == set(EMOTIONS)
    look_at = schema["$defs"]["LookAtUpdate"]["properties"]
    assert look_at["x"]["x-clamped"] == {"minimum": -1, "maximum": 1}
    # The same declarations are what the model clamps to.
    assert {name: (c.low, c.high) for name, c in CLAMPS.items()} == {
        "amplitude": (0, 1),
        "emotion_blend": (0, 1),
        "intensity": (0, 1),
        "progress": (0, 1),
        "text_duration": (500, 30000),
        "wink_left": (0, 1),
        "wink_right": (0, 1),
    }
    outgoing = msgspec.json.schema(OutgoingMessage)
    tags = {
        definition["properties"]["type"]["enum"][0]
        for definition in outgoing["$defs"].values()
        if "type" in definition.get("properties", {}) and "enum" in definition["properties"]["type"]
    }
    assert {"state", "history", "audio", "audio-seq", "audio-done", "pong", "error"} <= tags
