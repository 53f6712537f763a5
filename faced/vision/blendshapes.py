"""The 52 ARKit blendshapes: face_blendshapes.tflite for 51, the landmark model for tongueOut.

Owns running face_blendshapes.tflite and naming its scores as ARKit's 52 shapes.
Does not own the landmarks it reads (faced.vision.landmarks) or smoothing.
Why: agents and viewers speak ARKit's names; MediaPipe's model speaks indices.

The blendshape model takes 146 of the 478 landmarks in
full-image pixels (aspect ratio matters) and returns 52 sigmoided scores, the first being
MediaPipe's ``_neutral``, which is not an ARKit name and is dropped. ARKit's 52nd shape,
``tongueOut``, comes from the landmark model's third output (MediaPipe discards it).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from faced.vision.runtime import InferenceModel

FloatArray = npt.NDArray[np.float32]

BLENDSHAPE_LANDMARKS: Final = np.array(
    [
        0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61,
        63, 65, 66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127,
        132, 133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
        161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251,
        263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308,
        310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365,
        373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397,
        398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476,
        477,
    ],
    dtype=np.intp,
)  # fmt: skip

MODEL_OUTPUT_NAMES: Final = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

# The public names: ARKit's 52, in the model's order with tongueOut last.
ARKIT_NAMES: Final = (*MODEL_OUTPUT_NAMES[1:], "tongueOut")
NAME_INDEX: Final = {name: i for i, name in enumerate(ARKIT_NAMES)}


class BlendshapeModel:
    """Scores the 52 ARKit blendshapes of one face."""

    def __init__(self, model: InferenceModel) -> None:
        self._model = model
        expected = (1, len(BLENDSHAPE_LANDMARKS), 2)
        if model.inputs[0].shape != expected:
            raise ValueError(f"blendshape model input {model.inputs[0].shape}, want {expected}")
        self._points = np.empty(expected, dtype=np.float32)
        self._scale = np.empty(2, dtype=np.float32)

    def run(self, landmarks: FloatArray, width: int, height: int, tongue_out: float) -> FloatArray:
        """Scores (52,) in ARKIT_NAMES order from normalized landmarks (478, 3)."""
        self._scale[0], self._scale[1] = width, height
        np.multiply(landmarks[BLENDSHAPE_LANDMARKS, :2], self._scale, out=self._points[0])
        raw = self._model.run([self._points])[0].reshape(-1)
        scores = np.empty(len(ARKIT_NAMES), dtype=np.float32)
        scores[:-1] = raw[1:]
        scores[-1] = tongue_out
        return scores
