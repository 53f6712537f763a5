"""Perception: what the tracking results say about the person in front of the box.

Owns: turning each live tracking result (faced.live) and the debounced presence into the
``PersonSummary`` and the ``PersonEvent``s due (faced.schemas.person) — how many faces,
where the primary one is, how far (from the iris, else the eyes' distance apart, through
``camera.hfov_deg``), whether they look at the screen (head and gaze in a cone, with a
dwell), whether the mouth moves as in speech, a coarse expression. Pure and
clock-injected: every call gets its monotonic ``now``; no I/O, no tasks. Does not own:
presence's debounce (faced.live's ``Presence``), running it on the loop or delivering the
events (faced.live, faced.api.person). Why apart: each signal's thresholds and debounce are
tested with synthesized sequences, frame by frame, without a camera or a daemon.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from faced.config import CameraConfig, PerceptionConfig
from faced.schemas.analysis import Face
from faced.schemas.person import Expression, PersonEvent, PersonEventKind, PersonSummary
from faced.schemas.tracking import Position, PresenceMessage, TrackingResult

IRIS_DIAMETER_M: Final = 0.0117
"""The human iris's horizontal visible diameter varies little between adults (±0.5 mm)."""
EYE_DISTANCE_M: Final = 0.063
"""Mean adult distance between the pupils, for faces whose irises are too small to measure."""
FACE_WIDTH_M: Final = 0.15
"""Width of the landmarks' extent of an adult face: the last resort, without landmarks."""
IRIS_MIN_PX: Final = 7.0
"""Below this iris diameter (about 1 m from a 640 px, 66° camera) its few pixels are too
coarse: the eyes' distance apart is measured instead."""
GAZE_DEG_PER_UNIT: Final = 30.0
"""What an eye's gaze value of 1 (faced.vision.eyes) is in degrees, roughly: its iris
offset relative to the eye's half-width, times 2.5, is about 2 sin(angle)."""
ASSUMED_DISTANCE_M: Final = 0.6
"""Distance assumed for the camera's offset from the screen while none is measured."""
EXPRESSION_MIN: Final = 0.35
"""Below this score no expression shows: neutral."""
_SPEECH_SHAPES: Final = ("jawOpen",)

# Iris landmarks: centre, then the edges (faced.vision.eyes, MediaPipe's 468..477).
_IRISES: Final = ((468, (469, 471), (470, 472)), (473, (474, 476), (475, 477)))


def _mean(shapes: Mapping[str, float], *names: str) -> float:
    return sum(shapes.get(name, 0.0) for name in names) / len(names)


def expression_of(shapes: Mapping[str, float]) -> tuple[Expression, float]:
    """A coarse label and its score 0..1 from the blendshapes: the strongest of a few
    hand-picked combinations, neutral when none reaches ``EXPRESSION_MIN``."""
    scores: dict[Expression, float] = {
        "happy": _mean(shapes, "mouthSmileLeft", "mouthSmileRight"),
        "surprised": 0.5 * _mean(shapes, "browInnerUp", "browOuterUpLeft", "browOuterUpRight")
        + 0.5 * _mean(shapes, "eyeWideLeft", "eyeWideRight"),
        "sad": 0.6 * _mean(shapes, "mouthFrownLeft", "mouthFrownRight")
        + 0.4 * shapes.get("browInnerUp", 0.0),
        "angry": 0.7 * _mean(shapes, "browDownLeft", "browDownRight")
        + 0.3 * _mean(shapes, "mouthPressLeft", "mouthPressRight"),
        "disgusted": 0.6 * _mean(shapes, "noseSneerLeft", "noseSneerRight")
        + 0.4 * _mean(shapes, "mouthUpperUpLeft", "mouthUpperUpRight"),
    }
    label = max(scores, key=scores.__getitem__)
    score = scores[label]
    if score < EXPRESSION_MIN:
        return "neutral", round(1.0 - score, 3)
    return label, round(min(score, 1.0), 3)


def focal_px(width: int, hfov_deg: float) -> float:
    """The camera's focal length in pixels of an image ``width`` pixels wide."""
    return (width / 2) / math.tan(math.radians(hfov_deg) / 2)


def distance_of(face: Face, width: int, height: int, hfov_deg: float) -> float | None:
    """Metres from the camera to ``face``: the iris's size when large enough, else the
    pupils' distance apart (corrected for the head's turn), else the face's width."""
    focal = focal_px(width, hfov_deg)
    points = face.landmarks
    if points is not None and len(points) >= 478:
        diameters = []
        for _, (a, b), (c, d) in _IRISES:
            across = math.hypot(
                (points[a][0] - points[b][0]) * width, (points[a][1] - points[b][1]) * height
            )
            down = math.hypot(
                (points[c][0] - points[d][0]) * width, (points[c][1] - points[d][1]) * height
            )
            diameters.append(max(across, down))  # a turn narrows one, never both
        iris = sum(diameters) / len(diameters)
        if iris >= IRIS_MIN_PX:
            return round(focal * IRIS_DIAMETER_M / iris, 3)
        left, right = points[468], points[473]
        apart = math.hypot((left[0] - right[0]) * width, (left[1] - right[1]) * height)
        turn = max(math.cos(math.radians(face.head.yaw)), 0.3)
        if apart > 0:
            return round(focal * EYE_DISTANCE_M * turn / apart, 3)
    face_px = face.bbox[2] * width
    if face_px <= 0:
        return None
    return round(focal * FACE_WIDTH_M / face_px, 3)


def position_of(bbox: Sequence[float]) -> Position:
    """The box's centre in -1..1 (as faced.live's presence reports it)."""
    x, y, w, h = bbox
    return Position(x=round(2 * (x + w / 2) - 1, 3), y=round(2 * (y + h / 2) - 1, 3))


class _Dwell:
    """A boolean that turns on after ``on_s`` of raw True and off after ``off_s`` of False."""

    __slots__ = ("_candidate_since", "_candidate_wall_ms", "off_s", "on_s", "since", "value")

    def __init__(self, on_s: float, off_s: float) -> None:
        self.on_s = on_s
        self.off_s = off_s
        self.value = False
        self.since: int | None = None
        self._candidate_since: float | None = None
        self._candidate_wall_ms = 0

    def update(self, raw: bool, now: float, wall_ms: int) -> bool:
        """Feed one sample; True when the value changed."""
        if raw == self.value:
            self._candidate_since = None
            return False
        if self._candidate_since is None:
            self._candidate_since = now
            self._candidate_wall_ms = wall_ms  # the frame's own time: since never precedes it
        if now - self._candidate_since < (self.on_s if raw else self.off_s):
            return False
        self.value = raw
        self.since = self._candidate_wall_ms if raw else None
        self._candidate_since = None
        return True

    def reset(self) -> bool:
        changed = self.value
        self.value = False
        self.since = None
        self._candidate_since = None
        return changed


class _Speech:
    """Mouth swings: each time jawOpen reverses by at least ``amplitude`` is one swing;
    speech is ``swings`` of them within ``window_s``."""

    __slots__ = ("_direction", "_extreme", "_start", "_swings", "amplitude", "swings", "window_s")

    def __init__(self, window_s: float, swings: int, amplitude: float) -> None:
        self.window_s = window_s
        self.swings = swings
        self.amplitude = amplitude
        self._swings: deque[float] = deque(maxlen=64)
        self._extreme: float | None = None
        self._start = 0.0
        self._direction = 0

    def update(self, opening: float, now: float) -> bool:
        """Feed one frame's mouth opening; whether it moves as in speech now."""
        extreme = self._extreme
        direction = self._direction
        if extreme is None:
            self._extreme = self._start = opening
        elif direction == 0:
            # The first move by ``amplitude`` from the lowest or highest value sets the
            # direction; ``_extreme`` and ``_start`` hold those two until then.
            low, high = min(extreme, self._start), max(extreme, self._start)
            if opening - low >= self.amplitude:
                self._direction, self._extreme = 1, opening
            elif high - opening >= self.amplitude:
                self._direction, self._extreme = -1, opening
            else:
                self._extreme, self._start = min(low, opening), max(high, opening)
        elif (opening - extreme) * direction > 0:
            self._extreme = opening  # still going the same way: the extreme moves on
        elif abs(opening - extreme) >= self.amplitude:
            # Turned round by enough: the extreme was a real peak or trough.
            self._direction = -direction
            self._extreme = opening
            self._swings.append(now)
        swings = self._swings
        while swings and now - swings[0] > self.window_s:
            swings.popleft()
        return len(swings) >= self.swings

    def reset(self) -> None:
        self._swings.clear()
        self._extreme = None
        self._direction = 0


class Perception:
    """The person's summary, updated frame by frame, and the events each frame causes."""

    def __init__(
        self,
        config: PerceptionConfig | None = None,
        camera: CameraConfig | None = None,
    ) -> None:
        self.config = config = config or PerceptionConfig()
        camera = camera or CameraConfig()
        self._hfov_deg = camera.hfov_deg
        self._mirrored = camera.mirror
        self._attention = _Dwell(config.attention_on_ms / 1000, config.attention_off_ms / 1000)
        self._speaking = _Dwell(0.0, config.speaking_off_ms / 1000)
        self._speech = _Speech(
            config.speaking_window_ms / 1000, config.speaking_swings, config.speaking_amplitude
        )
        self._expression_hold_s = config.expression_ms / 1000
        self._expression: Expression | None = None
        self._expression_score: float | None = None
        self._expression_since: int | None = None
        self._candidate: Expression | None = None
        self._candidate_since = 0.0
        self._candidate_wall_ms = 0
        self._present_since: int | None = None
        self._distance: float | None = None
        self.summary = PersonSummary(present=False, people=0, ts=0)

    @property
    def attention(self) -> bool:
        return self._attention.value

    def update(
        self,
        result: TrackingResult | None,
        presence: PresenceMessage | None,
        *,
        present: bool,
        now: float,
        wall_ms: int | None = None,
    ) -> list[PersonEvent]:
        """One frame (None: no frame came, the camera failed) and the presence event it
        caused, with presence's debounced state after it; ``now`` is monotonic seconds.
        Returns the events due, in order (an arrival first; a departure last)."""
        ts = result.ts if result is not None else (wall_ms or self.summary.ts)
        face = result.faces[0] if result is not None and result.faces else None
        events: list[PersonEventKind] = []
        if presence is not None and presence.event == "arrived":
            self._present_since = presence.ts
            events.append("arrived")
        if present and face is not None and result is not None:
            events.extend(self._observe(face, result, now, ts))
        elif present:
            # A frame without a face while presence still holds: nobody looks or speaks.
            if self._attention.update(False, now, ts):
                events.append("attention_end")
            self._speech.update(0.0, now)
            if self._speaking.update(False, now, ts):
                events.append("speaking_end")
        else:
            events.extend(self._forget())
        if presence is not None and presence.event == "left":
            self._present_since = None
            events.append("left")
        summary = self.summary = self._summarize(result, face, present, ts)
        if not events:
            return []
        fields = msgspec.structs.asdict(summary)
        return [PersonEvent(event=kind, **fields) for kind in events]

    def _observe(
        self, face: Face, result: TrackingResult, now: float, ts: int
    ) -> list[PersonEventKind]:
        events: list[PersonEventKind] = []
        width, height = result.image.width, result.image.height
        distance = distance_of(face, width, height, self._hfov_deg)
        self._distance = distance
        looking = self.looking(face, width, height, distance)
        if self._attention.update(looking, now, ts):
            events.append("attention_start" if looking else "attention_end")
        shapes = face.blendshapes
        if shapes is None:
            # The model is off (nobody reads these signals, faced.demand): speech runs
            # out as if the mouth were still, and no expression is known.
            self._speech.update(0.0, now)
            if self._speaking.update(False, now, ts):
                events.append("speaking_end")
            self._expression = self._candidate = None
            self._expression_score = self._expression_since = None
            return events
        opening = max(shapes.get(name, 0.0) for name in _SPEECH_SHAPES)
        speech = self._speech.update(opening, now)
        if self._speaking.update(speech, now, ts):
            events.append("speaking_start" if speech else "speaking_end")
        label, score = expression_of(shapes)
        self._expression_score = score
        if label != self._candidate:
            self._candidate = label
            self._candidate_since = now
            self._candidate_wall_ms = ts
        if label != self._expression and (
            self._expression is None or now - self._candidate_since >= self._expression_hold_s
        ):
            changed = self._expression is not None
            self._expression = label
            self._expression_since = self._candidate_wall_ms
            if changed:
                events.append("expression")
        return events

    def looking(self, face: Face, width: int, height: int, distance: float | None) -> bool:
        """Whether the head and the eyes point at the screen's centre, within the cones."""
        config = self.config
        focal = focal_px(width, self._hfov_deg)
        x, y, w, h = face.bbox
        # The direction from the camera to the face; facing the camera means turning back.
        right = math.degrees(math.atan((x + w / 2 - 0.5) * width / focal))
        up = math.degrees(math.atan((0.5 - y - h / 2) * height / focal))
        away = distance or ASSUMED_DISTANCE_M
        # The screen's centre seen from the person, beside the camera: its offset, turned
        # into degrees at their distance (the image's right is the person's left unless
        # the frames are mirrored).
        offset_x = math.degrees(math.atan(config.camera_offset_x_m / away))
        offset_y = math.degrees(math.atan(config.camera_offset_y_m / away))
        target_yaw = -right + (-offset_x if self._mirrored else offset_x)
        target_pitch = -up - offset_y
        head = face.head
        if abs(head.yaw - target_yaw) > config.head_yaw_deg:
            return False
        if abs(head.pitch - target_pitch) > config.head_pitch_deg:
            return False
        eyes = face.eyes
        gaze_x = (eyes.left.gaze[0] + eyes.right.gaze[0]) / 2 * GAZE_DEG_PER_UNIT
        gaze_y = (eyes.left.gaze[1] + eyes.right.gaze[1]) / 2 * GAZE_DEG_PER_UNIT
        return (
            abs(head.yaw + gaze_x - target_yaw) <= config.gaze_deg
            and abs(head.pitch + gaze_y - target_pitch) <= config.gaze_deg
        )

    def _forget(self) -> list[PersonEventKind]:
        """Nobody present: whatever was on ends (before ``left``)."""
        events: list[PersonEventKind] = []
        if self._attention.reset():
            events.append("attention_end")
        self._speech.reset()
        if self._speaking.reset():
            events.append("speaking_end")
        self._expression = self._candidate = None
        self._expression_score = self._expression_since = None
        self._distance = None
        return events

    def _summarize(
        self, result: TrackingResult | None, face: Face | None, present: bool, ts: int
    ) -> PersonSummary:
        people = len(result.faces) if result is not None else 0
        if not present:
            return PersonSummary(present=False, people=people, ts=ts)
        shapes = face.blendshapes if face is not None else None
        smile = None
        if shapes is not None:
            smile = round(_mean(shapes, "mouthSmileLeft", "mouthSmileRight"), 3)
        previous = self.summary
        return PersonSummary(
            present=True,
            people=people,
            ts=ts,
            distance_m=self._distance,
            attention=self._attention.value,
            speaking=self._speaking.value,
            expression=self._expression,
            expression_score=self._expression_score,
            smile=smile if smile is not None or face is not None else previous.smile,
            position=position_of(face.bbox) if face is not None else previous.position,
            present_since=self._present_since,
            attention_since=self._attention.since,
            speaking_since=self._speaking.since,
            expression_since=self._expression_since,
        )


__all__ = ["Perception", "distance_of", "expression_of", "focal_px", "position_of"]
