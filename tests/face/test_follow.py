"""Gaze follow and mirror, the pure part: tracking results in, face-state updates out.

Real ``TrackingResult`` structs (one from the real pipeline
on a photograph, its box and blendshapes then set per case), the real ``FaceModel``
applying every update the follower proposes, and a test clock.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from faced.face import FaceModel
from faced.face.follow import (
    GAZE_DEADBAND,
    LOST_S,
    Follower,
    gaze_of,
    groups_of,
    mirror_of,
)
from faced.schemas.analysis import Analysis
from faced.schemas.face_state import LookAtUpdate, StateUpdate
from faced.schemas.tracking import TrackingResult
from faced.vision.pipeline import FacePipeline
from tests import data

STEP_S = 0.05  # 20 updates/s, follow.rate_hz's default


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    result = FacePipeline.load(num_faces=1).analyze(data.load_rgb("tongue.jpg"))
    assert result.face_found
    return result


@pytest.fixture
def tracked(analysis: Analysis) -> Callable[..., TrackingResult]:
    """A tracking result of the photo's face, moved to ``bbox``, with ``shapes`` set."""

    def make(
        bbox: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.2),
        shapes: dict[str, float] | None = None,
        found: bool = True,
    ) -> TrackingResult:
        fields = {name: getattr(analysis, name) for name in Analysis.__struct_fields__}
        result = TrackingResult(**fields, frame=1, ts=0, fps=30.0, latency_ms=5.0)
        if not found:
            return msgspec.structs.replace(
                result, face_found=False, faces=[], bbox=None, blendshapes=None, head=None
            )
        blendshapes = dict.fromkeys(analysis.blendshapes or {}, 0.0)
        blendshapes.update(shapes or {})
        return msgspec.structs.replace(result, bbox=bbox, blendshapes=blendshapes)

    return make


def run(
    follower: Follower,
    model: FaceModel,
    clock: Clock,
    seconds: float,
    feed: TrackingResult | None = None,
    *,
    audio_playing: bool = False,
) -> list[StateUpdate]:
    """Step like the daemon's task: observe (at 30 fps) and apply what the follower says."""
    updates = []
    end = clock.now + seconds
    while clock.now < end:
        clock.now += STEP_S
        if feed is not None:
            follower.observe(feed)
        update = follower.step(model.state, audio_playing=audio_playing)
        if update is not None:
            model.apply(update, touch=False)
            updates.append(update)
    return updates


def test_gaze_looks_at_the_person_mirror_correctly() -> None:
    # A face on the image's left is on the camera's left: the face on the screen looks to
    # its own left, the screen's right as the person sees it (lookAt.x > 0).
    x, y = gaze_of((0.1, 0.1, 0.2, 0.2), frames_mirrored=False)
    assert x == pytest.approx(0.6) and y == pytest.approx(-0.6)  # and up: the face is high
    # Flipped frames (camera.mirror) show the same person on the image's right.
    x, y = gaze_of((0.7, 0.7, 0.2, 0.2), frames_mirrored=True)
    assert x == pytest.approx(0.6) and y == pytest.approx(0.6)
    assert gaze_of((0.4, 0.4, 0.2, 0.2), frames_mirrored=False) == pytest.approx((0.0, 0.0))


def test_follow_converges_then_stays_quiet(tracked: Callable[..., TrackingResult]) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("follow", clock=clock)
    person = tracked(bbox=(0.05, 0.3, 0.2, 0.2))  # centre (0.15, 0.4): lookAt (0.7, -0.2)
    updates = run(follower, model, clock, 2.0, person)
    assert model.state.look_at.x == pytest.approx(0.7, abs=GAZE_DEADBAND)
    assert model.state.look_at.y == pytest.approx(-0.2, abs=GAZE_DEADBAND)
    xs = [u.look_at.x for u in updates if isinstance(u.look_at, LookAtUpdate)]
    assert xs == sorted(xs)  # eased toward the person, no overshoot
    assert 3 <= len(updates) < 20  # smoothing and deadband: not one update per step
    # Follow mode touches nothing but the gaze.
    assert {
        k for u in updates for k, v in msgspec.structs.asdict(u).items() if v is not msgspec.UNSET
    } == {"look_at"}
    # Settled: the same person at the same place says nothing more.
    assert run(follower, model, clock, 2.0, person) == []


def test_gaze_eases_back_to_centre_when_the_person_leaves(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("follow", clock=clock)
    run(follower, model, clock, 1.0, tracked(bbox=(0.7, 0.4, 0.2, 0.2)))
    assert model.state.look_at.x < -0.5
    nobody = tracked(found=False)
    assert run(follower, model, clock, LOST_S * 0.8, nobody) == []  # not gone yet
    updates = run(follower, model, clock, 5.0, nobody)
    assert len(updates) >= 3  # eased, not snapped
    assert model.state.look_at.x == 0.0 and model.state.look_at.y == 0.0
    assert run(follower, model, clock, 2.0, nobody) == []


def test_an_agents_look_at_holds_for_the_hold_time(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("follow", hold_s=5.0, clock=clock)
    person = tracked(bbox=(0.05, 0.4, 0.2, 0.2))
    run(follower, model, clock, 1.0, person)
    agent = StateUpdate(look_at=LookAtUpdate(x=-1.0, y=0.5))
    model.apply(agent)
    follower.agent_wrote(agent)
    assert follower.holding() == ["gaze"]
    assert run(follower, model, clock, 4.9, person) == []
    assert (model.state.look_at.x, model.state.look_at.y) == (-1.0, 0.5)
    updates = run(follower, model, clock, 2.0, person)
    assert updates and model.state.look_at.x > 0.6  # the camera resumed, easing back
    assert follower.holding() == []


def test_an_agents_state_holds_everything_text_holds_nothing() -> None:
    assert groups_of(StateUpdate(state="thinking")) == {"gaze", "expression", "winks", "mouth"}
    assert groups_of(StateUpdate(type="reset")) == {"gaze", "expression", "winks", "mouth"}
    assert groups_of(StateUpdate(amplitude=0.5)) == {"mouth"}
    assert groups_of(StateUpdate(emotion="happy", wink_left=1.0)) == {"expression", "winks"}
    assert groups_of(StateUpdate(text="hello", color="#102030")) == frozenset()


def test_mirror_maps_blendshapes_to_face_state_fields() -> None:
    relaxed = mirror_of({"eyeBlinkLeft": 0.1, "eyeBlinkRight": 0.15, "jawOpen": 0.02})
    assert (relaxed.wink_left, relaxed.wink_right, relaxed.amplitude) == (0.0, 0.0, 0.0)
    assert relaxed.emotion == "neutral"
    wink = mirror_of({"eyeBlinkLeft": 0.9, "eyeBlinkRight": 0.1, "jawOpen": 0.6})
    assert (wink.wink_left, wink.wink_right, wink.amplitude) == (1.0, 0.0, 1.0)
    smile = mirror_of({"mouthSmileLeft": 0.6, "mouthSmileRight": 0.5})
    assert smile.emotion == "happy" and smile.intensity == pytest.approx(0.3 + 0.7 * 0.666, 0.01)
    broad = mirror_of({"mouthSmileLeft": 0.9, "mouthSmileRight": 0.95})
    assert broad.emotion == "happy" and broad.intensity == 1.0
    assert mirror_of({"browInnerUp": 0.9, "browOuterUpLeft": 0.8}).emotion == "surprised"
    assert mirror_of({"mouthFrownLeft": 0.5, "mouthFrownRight": 0.5}).emotion == "sad"
    assert mirror_of({"browDownLeft": 0.7, "browDownRight": 0.7}).emotion == "frustrated"


def test_mirror_mode_copies_the_person_and_returns_to_rest(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("mirror", clock=clock)
    shapes = {"eyeBlinkLeft": 0.9, "jawOpen": 0.4, "mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}
    run(follower, model, clock, 1.0, tracked(shapes=shapes))
    state = model.state
    assert (state.wink_left, state.wink_right) == (1.0, 0.0)
    assert state.amplitude == pytest.approx(mirror_of(shapes).amplitude, abs=0.06)
    assert state.emotion == "happy" and state.intensity > 0.9
    # The person leaves: what mirror set returns to rest.
    run(follower, model, clock, LOST_S + 1.0, tracked(found=False))
    state = model.state
    assert (state.wink_left, state.wink_right, state.amplitude) == (0.0, 0.0, 0.0)
    assert (state.emotion, state.intensity) == ("neutral", 1.0)


def test_mirror_emotion_must_persist_before_the_face_takes_it(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("mirror", clock=clock)
    smile = tracked(shapes={"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9})
    run(follower, model, clock, 1.0, tracked())
    run(follower, model, clock, 0.15, smile)  # a flicker of a smile
    run(follower, model, clock, 0.5, tracked())
    assert model.state.emotion == "neutral"
    run(follower, model, clock, 0.6, smile)
    assert model.state.emotion == "happy"


def test_mirror_leaves_the_mouth_to_the_speaker(tracked: Callable[..., TrackingResult]) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("mirror", clock=clock)
    talking = tracked(shapes={"jawOpen": 0.6})
    run(follower, model, clock, 0.5, talking, audio_playing=True)
    assert model.state.amplitude == 0.0
    model.apply(StateUpdate(state="speaking", amplitude=0.3), touch=False)  # lip sync
    run(follower, model, clock, 0.5, talking)
    assert model.state.amplitude == 0.3
    model.apply(StateUpdate(state="idle"), touch=False)
    run(follower, model, clock, 0.5, talking)
    assert model.state.amplitude == 1.0


def test_leaving_a_mode_returns_its_fields_then_says_nothing(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock)
    follower = Follower("mirror", clock=clock)
    person = tracked(bbox=(0.05, 0.4, 0.2, 0.2), shapes={"eyeBlinkRight": 0.9})
    run(follower, model, clock, 1.0, person)
    assert model.state.wink_right == 1.0 and model.state.look_at.x > 0.5
    follower.mode = "off"
    run(follower, model, clock, 3.0, person)
    state = model.state
    assert (state.look_at.x, state.look_at.y, state.wink_right) == (0.0, 0.0, 0.0)
    assert run(follower, model, clock, 2.0, person) == []
    assert not follower.driving


def test_camera_updates_do_not_restart_the_idle_timer(
    tracked: Callable[..., TrackingResult],
) -> None:
    clock = Clock()
    model = FaceModel(clock=clock, idle_timeout_s=2.0)
    model.apply(StateUpdate(state="thinking"))
    follower = Follower("follow", clock=clock)
    updates = run(follower, model, clock, 2.5, tracked(bbox=(0.05, 0.4, 0.2, 0.2)))
    assert updates  # the camera did move the eyes meanwhile
    assert [m.state for m in model.tick()] == ["idle"]
