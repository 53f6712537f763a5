"""Gaze follow and mirror: the tracked person, turned into ordinary face-state updates.

Owns: the ``Follower``. Pure: no I/O, no event loop, an injectable clock. Does not own: the
task that runs it and its wiring to tracking and the agents (faced.gaze_follow), or the
routes (faced.api.follow). Why apart: the mapping is geometry and timing, tested frame by
frame with a fake clock. The ``Follower`` is fed every live tracking result (faced.live)
with ``observe`` and every agent update with ``agent_wrote``; ``step(state)``, called at
most ``follow.rate_hz`` times a second (faced.gaze_follow), answers the ``StateUpdate`` that
brings the face closer to the person — or None when nothing moved past the deadband. The
update goes through the face model like an agent's, so every viewer (Open Face's page too)
follows and mirrors without ever receiving face data.

Modes: ``off`` — nothing; ``follow`` — ``lookAt`` looks at the person; ``mirror`` —
follow, and the face copies the person: blinks → ``winkLeft``/``winkRight``, jaw →
``amplitude``, smile → happy, raised brows → surprised, frown → sad, lowered brows →
frustrated (``emotion`` with ``intensity``).

Directions, worked out once. The camera sits at the screen and faces the person, as the
face on the screen does. A person standing on the camera's left appears on the left of an
unmirrored camera image (x < 0), and is on the *face's* left too — which, for the person
looking at the screen, is the screen's right. The viewer moves the pupils toward the
screen's right (as one looks at it) for ``lookAt.x > 0``, so ``lookAt.x = -x`` for
unmirrored frames and ``+x`` when ``camera.mirror`` flips them before tracking. Up is up
in both: ``lookAt.y`` (> 0 looks down on the screen) is the face's image ``y`` (> 0 lower).
Mirror mode is a mirror: the person's left eye (ARKit's ``eyeBlinkLeft``, the subject's
left) closes the eye on the person's left as they look at the screen, the viewer's
``winkLeft``.

Who wins: the face model holds one state, so the camera must not undo what an agent just
said. An agent's update holds the field groups it touched — ``gaze`` (lookAt),
``expression`` (emotion, its blend, intensity), ``winks``, ``mouth`` (amplitude); a
``state`` or a reset holds them all — for ``hold_s`` seconds, then the camera resumes,
easing from where the agent left the face. The camera never sets ``amplitude`` while the
face is speaking or audio plays (the speaker's lip sync owns the mouth then). When the
person leaves (no face for ``LOST_S``), the gaze eases back to the centre and mirrored
fields return to rest; fields the camera never set are left alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from msgspec import UNSET

from faced.schemas.analysis import Analysis
from faced.schemas.face_state import Emotion, FaceState, LookAtUpdate, StateUpdate
from faced.schemas.follow import FollowMode

Group = Literal["gaze", "expression", "winks", "mouth"]
GROUPS: Final[tuple[Group, ...]] = ("gaze", "expression", "winks", "mouth")
# StateUpdate field -> the group an agent's update of it holds.
FIELD_GROUPS: Final[Mapping[str, Group]] = {
    "look_at": "gaze",
    "emotion": "expression",
    "emotion_secondary": "expression",
    "emotion_blend": "expression",
    "intensity": "expression",
    "wink_left": "winks",
    "wink_right": "winks",
    "amplitude": "mouth",
}

LOST_S: Final = 1.0
"""No face for this long: the person left (shorter than presence's 2 s, so the eyes do
not stare at an empty spot)."""
GAZE_TAU_S: Final = 0.12
"""Time constant of the gaze's smoothing: steady eyes, yet they keep up with a walk."""
RETURN_TAU_S: Final = 0.4
"""Slower when the person left: the eyes drift back to the centre."""
SHAPE_TAU_S: Final = 0.05
"""Blendshape smoothing: a blink lasts 100-150 ms and must survive it."""
EMOTION_DWELL_S: Final = 0.3
"""A mirrored emotion must persist this long before the face takes it (no flicker)."""
GAZE_DEADBAND: Final = 0.03
WINK_DEADBAND: Final = 0.1
AMPLITUDE_DEADBAND: Final = 0.05
INTENSITY_DEADBAND: Final = 0.1
_MAX_DT_S: Final = 0.1  # after a pause (nobody there), smoothing restarts gently
_EMOTION_THRESHOLD: Final = 0.1

_SHAPES: Final = (
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "jawOpen",
    "mouthSmileLeft",
    "mouthSmileRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "browDownLeft",
    "browDownRight",
)


def _clamp(value: float, low: float = -1.0, high: float = 1.0) -> float:
    return min(max(value, low), high)


def _ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return _clamp((value - low) / (high - low), 0.0, 1.0)


def gaze_of(
    bbox: tuple[float, float, float, float], *, frames_mirrored: bool
) -> tuple[float, float]:
    """``lookAt`` (x, y) that looks at a face whose normalized box is ``bbox``."""
    x, y, w, h = bbox
    centre_x = 2.0 * (x + w / 2.0) - 1.0
    centre_y = 2.0 * (y + h / 2.0) - 1.0
    return _clamp(centre_x if frames_mirrored else -centre_x), _clamp(centre_y)


@dataclass(frozen=True, slots=True)
class Mirrored:
    """What mirror mode reads off a face."""

    wink_left: float
    wink_right: float
    amplitude: float
    emotion: Emotion
    intensity: float


def mirror_of(shapes: Mapping[str, float]) -> Mirrored:
    """Map ARKit blendshapes (0..1) to face-state fields. The thresholds sit above what a
    relaxed face scores (MediaPipe's blink reads 0.05-0.3 with open eyes, a closed mouth
    a jawOpen under 0.05)."""

    def shape(name: str) -> float:
        return float(shapes.get(name, 0.0))

    def mean(*names: str) -> float:
        return sum(shape(n) for n in names) / len(names)

    scores: list[tuple[Emotion, float]] = [
        ("happy", _ramp(mean("mouthSmileLeft", "mouthSmileRight"), 0.25, 0.7)),
        (
            "surprised",
            _ramp(
                0.6 * shape("browInnerUp") + 0.4 * mean("browOuterUpLeft", "browOuterUpRight"),
                0.35,
                0.75,
            ),
        ),
        ("sad", _ramp(mean("mouthFrownLeft", "mouthFrownRight"), 0.2, 0.55)),
        ("frustrated", _ramp(mean("browDownLeft", "browDownRight"), 0.35, 0.7)),
    ]
    emotion, score = max(scores, key=lambda item: item[1])  # the first wins a tie
    if score < _EMOTION_THRESHOLD:
        emotion, score = "neutral", 1.0
    return Mirrored(
        wink_left=round(_ramp(shape("eyeBlinkLeft"), 0.35, 0.65), 2),
        wink_right=round(_ramp(shape("eyeBlinkRight"), 0.35, 0.65), 2),
        amplitude=round(_ramp(shape("jawOpen"), 0.08, 0.6), 2),
        emotion=emotion,
        intensity=round(0.3 + 0.7 * score, 2),
    )


def groups_of(update: StateUpdate) -> frozenset[Group]:
    """The field groups an agent's ``update`` holds against the camera."""
    if update.type == "reset" or update.state is not UNSET:
        return frozenset(GROUPS)
    return frozenset(
        group for name, group in FIELD_GROUPS.items() if getattr(update, name) is not UNSET
    )


def _smooth(current: float, target: float, dt: float, tau: float) -> float:
    return current + (target - current) * (1.0 - math.exp(-dt / tau))


class Follower:
    """The camera's side of the face: what it last saw, what it drives, what is held."""

    def __init__(
        self,
        mode: FollowMode = "follow",
        *,
        hold_s: float = 5.0,
        frames_mirrored: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode: FollowMode = mode
        self.hold_s = hold_s
        self._frames_mirrored = frames_mirrored
        self._clock = clock
        self._seen_at = -math.inf
        self._target = (0.0, 0.0)
        self._raw_shapes: dict[str, float] = {}
        self._gaze = (0.0, 0.0)
        self._shapes: dict[str, float] = {}
        self._last_step: float | None = None
        self._held_until: dict[Group, float] = {}
        self._owned: set[Group] = set()
        self._candidate: Emotion = "neutral"
        self._candidate_since = -math.inf
        self._emotion: Emotion = "neutral"

    # --- input --------------------------------------------------------------------------

    def observe(self, result: Analysis) -> None:
        """One tracking result; a frame without a face changes nothing (see ``LOST_S``)."""
        if not result.face_found or result.bbox is None:
            return
        self._seen_at = self._clock()
        self._target = gaze_of(result.bbox, frames_mirrored=self._frames_mirrored)
        shapes = result.blendshapes or {}
        self._raw_shapes = {name: float(shapes.get(name, 0.0)) for name in _SHAPES}

    def agent_wrote(self, update: StateUpdate) -> None:
        """An agent's update (not the camera's): its fields win for ``hold_s``."""
        until = self._clock() + self.hold_s
        for group in groups_of(update):
            self._held_until[group] = until
            self._owned.discard(group)  # the agent's value now; not ours to reset

    # --- reading ------------------------------------------------------------------------

    @property
    def present(self) -> bool:
        return self._clock() - self._seen_at < LOST_S

    @property
    def driving(self) -> bool:
        """Whether ``step`` may have something to say (a person, or fields to return)."""
        return bool(self._owned) or (self.mode != "off" and self.present)

    def holding(self) -> list[Group]:
        now = self._clock()
        return [g for g in GROUPS if self._held_until.get(g, -math.inf) > now]

    def _held(self, group: Group, now: float) -> bool:
        return self._held_until.get(group, -math.inf) > now

    # --- the update -----------------------------------------------------------------------

    def step(self, state: FaceState, *, audio_playing: bool = False) -> StateUpdate | None:
        """The update bringing ``state`` (the face as it is) toward the person; None when
        nothing moved past its deadband."""
        now = self._clock()
        dt = 0.0 if self._last_step is None else min(max(now - self._last_step, 0.0), _MAX_DT_S)
        self._last_step = now
        present = now - self._seen_at < LOST_S
        changes: dict[str, object] = {}
        if not self._held("gaze", now):
            self._step_gaze(changes, state, present and self.mode != "off", dt)
        mouth_busy = state.state == "speaking" or audio_playing
        if present and self.mode == "mirror":
            self._step_mirror(changes, state, now, dt, mouth_busy)
        else:
            self._release_mirror(changes, state, now, mouth_busy)
        return StateUpdate(**changes) if changes else None  # type: ignore[arg-type]

    def _step_gaze(
        self, changes: dict[str, object], state: FaceState, active: bool, dt: float
    ) -> None:
        shown = (state.look_at.x, state.look_at.y)
        if active:
            if "gaze" not in self._owned:
                self._owned.add("gaze")
                self._gaze = shown  # ease from wherever the eyes are now
            target, tau = self._target, GAZE_TAU_S
        elif "gaze" in self._owned:
            target, tau = (0.0, 0.0), RETURN_TAU_S
        else:
            return
        self._gaze = (
            _smooth(self._gaze[0], target[0], dt, tau),
            _smooth(self._gaze[1], target[1], dt, tau),
        )
        gaze = (round(self._gaze[0], 3), round(self._gaze[1], 3))
        if not active and max(abs(gaze[0]), abs(gaze[1])) < GAZE_DEADBAND:
            gaze = (0.0, 0.0)  # back at the centre: say so exactly, then let go
            self._owned.discard("gaze")
            if shown != gaze:
                changes["look_at"] = LookAtUpdate(x=0.0, y=0.0)
            return
        if max(abs(gaze[0] - shown[0]), abs(gaze[1] - shown[1])) >= GAZE_DEADBAND:
            changes["look_at"] = LookAtUpdate(x=gaze[0], y=gaze[1])

    def _step_mirror(
        self, changes: dict[str, object], state: FaceState, now: float, dt: float, mouth_busy: bool
    ) -> None:
        for name, raw in self._raw_shapes.items():
            previous = self._shapes.get(name)
            self._shapes[name] = (
                raw if previous is None else _smooth(previous, raw, dt, SHAPE_TAU_S)
            )
        mirrored = mirror_of(self._shapes)

        if not self._held("winks", now):
            self._owned.add("winks")
            for field, value, shown in (
                ("wink_left", mirrored.wink_left, state.wink_left),
                ("wink_right", mirrored.wink_right, state.wink_right),
            ):
                # Fully open or shut is always worth saying; in between, past the deadband.
                if abs(value - shown) >= WINK_DEADBAND or (value in (0.0, 1.0) and value != shown):
                    changes[field] = value

        if mouth_busy:
            self._owned.discard("mouth")  # the speaker's lip sync owns the mouth now
        elif not self._held("mouth", now):
            self._owned.add("mouth")
            value, shown_amp = mirrored.amplitude, state.amplitude
            if abs(value - shown_amp) >= AMPLITUDE_DEADBAND or (value == 0.0 and shown_amp != 0.0):
                changes["amplitude"] = value

        if not self._held("expression", now):
            if mirrored.emotion != self._candidate:
                self._candidate, self._candidate_since = mirrored.emotion, now
            if now - self._candidate_since >= EMOTION_DWELL_S:
                self._emotion = self._candidate
            self._owned.add("expression")
            if state.emotion != self._emotion:
                changes["emotion"] = self._emotion
                changes["intensity"] = mirrored.intensity if self._emotion != "neutral" else 1.0
            elif (
                self._emotion == mirrored.emotion != "neutral"
                and abs(mirrored.intensity - state.intensity) >= INTENSITY_DEADBAND
            ):
                changes["intensity"] = mirrored.intensity

    def _release_mirror(
        self, changes: dict[str, object], state: FaceState, now: float, mouth_busy: bool
    ) -> None:
        """Return the fields mirror mode set to rest (the person left, or the mode changed)."""
        self._shapes.clear()
        self._candidate, self._emotion = "neutral", "neutral"
        if "winks" in self._owned and not self._held("winks", now):
            self._owned.discard("winks")
            if state.wink_left != 0.0:
                changes["wink_left"] = 0.0
            if state.wink_right != 0.0:
                changes["wink_right"] = 0.0
        if "mouth" in self._owned and not self._held("mouth", now):
            self._owned.discard("mouth")
            if state.amplitude != 0.0 and not mouth_busy:
                changes["amplitude"] = 0.0
        if "expression" in self._owned and not self._held("expression", now):
            self._owned.discard("expression")
            if state.emotion != "neutral" or state.intensity != 1.0:
                changes["emotion"] = "neutral"
                changes["intensity"] = 1.0


__all__ = [
    "FIELD_GROUPS",
    "GROUPS",
    "Follower",
    "Group",
    "Mirrored",
    "gaze_of",
    "groups_of",
    "mirror_of",
]
