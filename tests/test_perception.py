"""faced.perception, the pure module: synthesized frame sequences drive each signal, and
real photographs scaled to known sizes through the real pipeline check the distance.

The sequences are built frame by frame at 30 frames/s with the clock given to each call
(no sleeping): a face turning away and back, a mouth moving at speech rate against a still
smile and one yawn, expressions, arrival and departure, a face shrinking to half its size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from faced.config import CameraConfig, PerceptionConfig
from faced.perception import Perception, distance_of, expression_of, focal_px
from faced.schemas.analysis import Eye, Eyes, Face, Head, ImageSize, ModelInfo, Timing
from faced.schemas.person import PersonEvent
from faced.schemas.tracking import PresenceMessage, TrackingResult
from faced.vision.synthetic import BACKGROUND_RGB
from tests import data

FPS = 30
DT = 1 / FPS
WIDTH, HEIGHT = 640, 480
T0_MS = 1_700_000_000_000
IDENTITY = [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]


def _landmarks(iris_px: float, apart_px: float) -> list[tuple[float, float, float]]:
    """478 points, all at the centre but the irises: ``iris_px`` across, ``apart_px`` apart."""
    points = [(0.5, 0.5, 0.0)] * 478
    for centre, offset in ((468, -apart_px / 2), (473, apart_px / 2)):
        cx = 0.5 + offset / WIDTH
        points[centre] = (cx, 0.5, 0.0)
        r = iris_px / 2
        points[centre + 1] = (cx + r / WIDTH, 0.5, 0.0)
        points[centre + 2] = (cx, 0.5 - r / HEIGHT, 0.0)
        points[centre + 3] = (cx - r / WIDTH, 0.5, 0.0)
        points[centre + 4] = (cx, 0.5 + r / HEIGHT, 0.0)
    return points


def face(
    *,
    yaw: float = 0.0,
    pitch: float = 0.0,
    gaze: tuple[float, float] = (0.0, 0.0),
    shapes: dict[str, float] | None = None,
    width: float = 0.25,
    iris_px: float | None = None,
) -> Face:
    """A face at the image's centre; ``width`` of the image wide."""
    eye = Eye(gaze=gaze, openness=1.0)
    landmarks = None
    if iris_px is not None:
        landmarks = _landmarks(iris_px, iris_px * 0.063 / 0.0117)
    return Face(
        bbox=(0.5 - width / 2, 0.5 - width * 0.6, width, width * 1.2),
        score=0.99,
        blendshapes=shapes or {},
        head=Head(yaw=yaw, pitch=pitch, roll=0.0, matrix=IDENTITY),
        eyes=Eyes(left=eye, right=eye),
        landmarks=landmarks,
    )


def result(faces: list[Face], frame: int) -> TrackingResult:
    primary = faces[0] if faces else None
    return TrackingResult(
        face_found=bool(faces),
        faces=faces,
        image=ImageSize(width=WIDTH, height=HEIGHT),
        model=ModelInfo(name="test", version="0", sha256="0"),
        timing_ms=Timing(detect=0, landmarks=0, blendshapes=0, total=0),
        bbox=primary.bbox if primary else None,
        score=primary.score if primary else None,
        blendshapes=primary.blendshapes if primary else None,
        head=primary.head if primary else None,
        eyes=primary.eyes if primary else None,
        frame=frame,
        ts=T0_MS + round(frame * 1000 / FPS),
        fps=FPS,
        latency_ms=1.0,
    )


class Run:
    """Feeds a Perception frame by frame with presence already there (arrived at frame 0)."""

    def __init__(self, perception: Perception | None = None) -> None:
        self.perception = perception or Perception()
        self.frame = 0
        self.events: list[tuple[int, PersonEvent]] = []
        arrived = PresenceMessage(event="arrived", present=True, ts=T0_MS)
        self.step([face()], presence=arrived)

    def step(
        self, faces: list[Face], *, presence: PresenceMessage | None = None, present: bool = True
    ) -> list[PersonEvent]:
        events = self.perception.update(
            result(faces, self.frame), presence, present=present, now=self.frame * DT
        )
        self.events.extend((self.frame, event) for event in events)
        self.frame += 1
        return events

    def play(self, faces: Iterator[Face] | list[Face]) -> None:
        for one in faces:
            self.step([one])

    def kinds(self) -> list[str]:
        return [event.event for _, event in self.events]

    def frames_of(self, kind: str) -> list[int]:
        return [frame for frame, event in self.events if event.event == kind]


# --- attention ---------------------------------------------------------------------------


def test_turning_away_and_back_starts_and_ends_attention_after_the_dwell() -> None:
    run = Run()
    run.play([face()] * 30)  # 1 s looking at the screen
    (start,) = run.frames_of("attention_start")
    assert 9 <= start <= 11  # 300 ms of looking
    summary = run.perception.summary
    assert summary.attention and summary.attention_since is not None
    assert summary.attention_since == pytest.approx(T0_MS, abs=40)
    run.play([face(yaw=60)] * 10)  # 333 ms turned away: within the 500 ms off dwell
    assert run.frames_of("attention_end") == []
    run.play([face()] * 10)
    run.play([face(yaw=60)] * 30)  # 1 s away
    (end,) = run.frames_of("attention_end")
    assert 50 + 14 <= end <= 50 + 16  # 500 ms after turning away
    assert not run.perception.summary.attention
    assert run.perception.summary.attention_since is None
    run.play([face()] * 20)
    assert run.kinds().count("attention_start") == 2


@pytest.mark.parametrize(
    ("kwargs", "attends"),
    [
        ({"yaw": 20}, False),  # the head turned, the eyes with it
        ({"yaw": 20, "gaze": (-0.6, 0.0)}, True),  # head turned, eyes back on the screen
        ({"pitch": -35}, False),  # looking down at a phone
        ({"gaze": (0.9, 0.0)}, False),  # head on, eyes to the side
        ({"yaw": -10, "pitch": 8}, True),  # within the cone
    ],
)
def test_the_cone_takes_head_and_gaze(kwargs: dict[str, Any], attends: bool) -> None:
    run = Run()
    run.play([face(**kwargs)] * 20)
    assert run.perception.summary.attention is attends


def test_a_face_off_centre_attends_when_it_turns_to_the_camera() -> None:
    perception = Perception(PerceptionConfig(head_yaw_deg=10, gaze_deg=8))
    off_right = face(yaw=-25)  # at the image's right edge, turned back toward the camera
    off_right = Face(**{**_fields(off_right), "bbox": (0.85, 0.4, 0.1, 0.12)})
    assert perception.looking(off_right, WIDTH, HEIGHT, 1.0)
    straight = Face(**{**_fields(off_right), "head": face().head})
    assert not perception.looking(straight, WIDTH, HEIGHT, 1.0)


def test_the_cameras_offset_moves_the_cone() -> None:
    above = Perception(PerceptionConfig(camera_offset_y_m=0.3, head_pitch_deg=10, gaze_deg=10))
    level = Perception(PerceptionConfig(head_pitch_deg=10, gaze_deg=10))
    down = face(pitch=-25)  # looking at a screen's centre 30 cm below the camera, 60 cm away
    assert above.looking(down, WIDTH, HEIGHT, 0.6)
    assert not level.looking(down, WIDTH, HEIGHT, 0.6)


def _fields(one: Face) -> dict[str, Any]:
    return {name: getattr(one, name) for name in one.__struct_fields__}


# --- speaking ----------------------------------------------------------------------------


def _mouth(values: list[float], **extra: float) -> list[Face]:
    return [face(shapes={"jawOpen": v, **extra}) for v in values]


def _speech(seconds: float, hz: float = 4.0) -> list[float]:
    """jawOpen of syllables at ``hz``: 0.05 .. 0.35."""
    count = round(seconds * FPS)
    return [0.2 + 0.15 * math.sin(2 * math.pi * hz * i / FPS) for i in range(count)]


def test_mouth_at_speech_rate_is_speaking_then_stops() -> None:
    run = Run()
    run.play(_mouth([0.05] * 15))
    run.play(_mouth(_speech(2.0)))
    (start,) = run.frames_of("speaking_start")
    assert start - 16 <= 21  # within ~0.7 s of the first syllable
    assert run.perception.summary.speaking
    assert run.perception.summary.speaking_since is not None
    run.play(_mouth([0.05] * 60))
    (end,) = run.frames_of("speaking_end")
    # The swings leave the 1 s window, then 600 ms off: under 2 s after the last syllable.
    assert 0 < end - (16 + 60) <= 2 * FPS
    assert not run.perception.summary.speaking


def test_a_pause_between_words_does_not_end_speaking() -> None:
    run = Run()
    run.play(_mouth(_speech(1.5)))
    run.play(_mouth([0.05] * 9))  # 300 ms between words
    run.play(_mouth(_speech(1.5)))
    assert run.kinds().count("speaking_start") == 1
    assert "speaking_end" not in run.kinds()


@pytest.mark.parametrize(
    "mouth",
    [
        pytest.param([0.02] * 120, id="still"),
        pytest.param([0.1] * 120, id="smile"),
        # A yawn: opens over 1 s, holds 1.5 s, closes over 1 s.
        pytest.param(
            [0.03 * i for i in range(30)] + [0.9] * 45 + [0.9 - 0.03 * i for i in range(30)],
            id="yawn",
        ),
        # Noise of the landmarks on a still face: ±0.02.
        pytest.param([0.05 + 0.02 * ((i * 7919) % 5 - 2) / 2 for i in range(120)], id="jitter"),
    ],
)
def test_a_still_face_a_smile_or_a_yawn_is_not_speech(mouth: list[float]) -> None:
    run = Run()
    run.play(_mouth(mouth, mouthSmileLeft=0.8, mouthSmileRight=0.8))
    assert "speaking_start" not in run.kinds()


# --- expression --------------------------------------------------------------------------


def test_expression_labels_are_coarse_and_scored() -> None:
    assert expression_of({}) == ("neutral", 1.0)
    assert expression_of({"mouthSmileLeft": 0.9, "mouthSmileRight": 0.7})[0] == "happy"
    surprised = {"browInnerUp": 0.8, "browOuterUpLeft": 0.7, "browOuterUpRight": 0.7}
    assert expression_of({**surprised, "eyeWideLeft": 0.6, "eyeWideRight": 0.6})[0] == "surprised"
    assert expression_of({"browDownLeft": 0.8, "browDownRight": 0.8})[0] == "angry"
    assert expression_of({"noseSneerLeft": 0.8, "noseSneerRight": 0.8})[0] == "disgusted"
    assert expression_of({"mouthFrownLeft": 0.8, "mouthFrownRight": 0.8})[0] == "sad"


def test_an_expression_event_comes_once_the_change_holds() -> None:
    run = Run()
    run.play([face()] * 10)
    assert run.perception.summary.expression == "neutral"
    smile = {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.8}
    run.play([face(shapes=smile)] * 5)  # 167 ms: too short
    run.play([face()] * 5)
    assert "expression" not in run.kinds()
    run.play([face(shapes=smile)] * 15)
    (frame,) = run.frames_of("expression")
    assert frame in (20 + 9, 20 + 10)
    assert run.events[-1][1].expression == "happy"
    summary = run.perception.summary
    assert summary.expression == "happy"
    assert summary.smile == pytest.approx(0.85)
    assert summary.expression_score == pytest.approx(0.85)
    assert summary.expression_since is not None
    assert summary.expression_since == pytest.approx(T0_MS + 21 * 1000 / FPS, abs=40)


# --- arriving and leaving ----------------------------------------------------------------


def test_arrival_and_departure_frame_the_other_events() -> None:
    run = Run()
    assert run.kinds() == ["arrived"]
    arrived = run.events[0][1]
    assert arrived.present and arrived.people == 1 and arrived.present_since == T0_MS
    run.play(_mouth(_speech(1.5)))
    assert run.perception.summary.attention and run.perception.summary.speaking
    left = PresenceMessage(event="left", present=False, ts=T0_MS + 5000, duration=4.0)
    events = run.step([], presence=left, present=False)
    assert [e.event for e in events] == ["attention_end", "speaking_end", "left"]
    assert all(not e.present for e in events)
    summary = run.perception.summary
    assert not summary.present and summary.people == 0
    assert summary.present_since is None and summary.distance_m is None


def test_nobody_present_means_no_signals() -> None:
    perception = Perception()
    for frame in range(30):
        events = perception.update(result([face()], frame), None, present=False, now=frame * DT)
        assert events == []
    summary = perception.summary
    assert summary.present is False and summary.people == 1 and not summary.attention


def test_no_frame_keeps_the_summary_and_counts_time() -> None:
    run = Run()
    run.play([face()] * 15)
    events = run.perception.update(None, None, present=True, now=run.frame * DT)
    assert events == []
    assert run.perception.summary.present


# --- distance ------------------------------------------------------------------------------


def test_half_the_size_reads_twice_as_far_by_iris_eyes_and_box() -> None:
    near = distance_of(face(iris_px=20), WIDTH, HEIGHT, 66)
    far = distance_of(face(iris_px=10), WIDTH, HEIGHT, 66)
    assert near is not None and far is not None
    assert far / near == pytest.approx(2.0, rel=0.01)
    # 20 px of iris at 640 px, 66°: focal 492.8 px, 11.7 mm → 0.288 m.
    assert near == pytest.approx(focal_px(WIDTH, 66) * 0.0117 / 20, rel=0.01)
    # Irises too small to measure: the eyes' distance apart, the same scale.
    small = distance_of(face(iris_px=5), WIDTH, HEIGHT, 66)
    assert small is not None and small / far == pytest.approx(2.0, rel=0.05)
    boxed = [distance_of(face(width=w), WIDTH, HEIGHT, 66) for w in (0.3, 0.15)]
    assert boxed[0] is not None and boxed[1] is not None
    assert boxed[1] / boxed[0] == pytest.approx(2.0, rel=0.01)


def test_a_shrinking_face_reads_farther_in_the_summary() -> None:
    run = Run()
    run.play([face(iris_px=20)] * 3)
    near = run.perception.summary.distance_m
    run.play([face(iris_px=10)] * 3)
    far = run.perception.summary.distance_m
    assert near is not None and far is not None and far / near == pytest.approx(2.0, rel=0.2)


def test_a_wider_lens_reads_nearer() -> None:
    narrow = distance_of(face(iris_px=20), WIDTH, HEIGHT, 66)
    wide = distance_of(face(iris_px=20), WIDTH, HEIGHT, 102)
    assert narrow is not None and wide is not None and wide < narrow
    perception = Perception(camera=CameraConfig(hfov_deg=102))
    assert perception.looking(face(), WIDTH, HEIGHT, wide)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415  (loads the models)

    return FacePipeline.load(None, detector="auto")


def _placed(photo: np.ndarray, face_px: float, photo_face_px: float, size: tuple[int, int]):
    """The photo scaled so its face is ``face_px`` wide, centred on a frame of ``size``."""
    width, height = size
    scale = face_px / photo_face_px
    scaled = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND_RGB
    h, w = scaled.shape[:2]
    top, left = (height - h) // 2, (width - w) // 2
    src = scaled[max(0, -top) : max(0, -top) + height, max(0, -left) : max(0, -left) + width]
    canvas[max(0, top) : max(0, top) + src.shape[0], max(0, left) : max(0, left) + src.shape[1]] = (
        src
    )
    return canvas


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tongue.jpg", "lenna.png", "takeo.ppm"])
@pytest.mark.parametrize(
    ("size", "near_px", "measure"),
    [((640, 480), 240, "iris"), ((320, 240), 80, "eyes apart")],
)
def test_photographs_half_the_size_read_twice_as_far(
    pipeline: Any, name: str, size: tuple[int, int], near_px: int, measure: str
) -> None:
    """A face half as wide in the same frame reads twice as far (±20 %): by the iris when
    it is large enough, by the eyes' distance apart when it is not."""
    photo = data.load_rgb(name)
    found = pipeline.analyze(photo, landmarks=True)
    photo_face_px = found.faces[0].bbox[2] * photo.shape[1]
    width, height = size
    distances = []
    for face_px in (near_px, near_px / 2):
        analysis = pipeline.analyze(_placed(photo, face_px, photo_face_px, size), landmarks=True)
        assert analysis.faces, f"no face at {face_px} px"
        distance = distance_of(analysis.faces[0], width, height, 66)
        assert distance is not None
        distances.append(distance)
    assert distances[1] / distances[0] == pytest.approx(2.0, rel=0.2), measure
    # An adult face ~14 cm wide (the landmarks' extent), near_px of a 66° image.
    expected = focal_px(width, 66) * 0.14 / near_px
    assert distances[0] == pytest.approx(expected, rel=0.3)
