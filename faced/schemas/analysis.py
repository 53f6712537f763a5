"""The analyze result: one schema for REST, sockets and the CLI.

Owns: the result's shape. Does not own: computing it (faced.vision.stages). Why apart: the
routes, the sockets, `faced analyze --jsonl` and the OpenAPI document give one document.
``faces`` lists every face found, largest first; the
primary (largest) face's fields are repeated at the top level so ``data["blendshapes"]``
and ``data["eyes"]["left"]["gaze"]`` work as in Eyeconic's API (null when no face).
Coordinates are normalized to the image (0..1, x right, y down); ``left``/``right`` are the
subject's; gaze x > 0 looks toward the image's right, y > 0 up.
"""

from __future__ import annotations

import msgspec


class _Schema(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of the result types: keyword construction, optional fields left out when unset."""


class Eye(_Schema):
    gaze: tuple[float, float]
    """[x, y] in -1..1: x > 0 toward the image's right, y > 0 up."""
    openness: float
    """0 closed .. 1 open."""


class Eyes(_Schema):
    left: Eye
    """The subject's left eye."""
    right: Eye
    """The subject's right eye."""


class Head(_Schema):
    yaw: float
    """Degrees; > 0 when the face turns toward the image's right."""
    pitch: float
    """Degrees; > 0 when the face tilts up."""
    roll: float
    """Degrees; > 0 when the head rotates counter-clockwise in the image."""
    matrix: list[list[float]]
    """4x4 row-major facial transformation matrix (canonical face -> camera, cm), as
    MediaPipe's facial_transformation_matrixes."""


class Face(_Schema):
    bbox: tuple[float, float, float, float]
    """[x, y, w, h] of the landmarks' extent, normalized, clipped to the image."""
    score: float
    """Face presence score of the landmark model, 0..1."""
    head: Head
    eyes: Eyes
    blendshapes: dict[str, float] | None = None
    """All 52 ARKit blendshape names (tongueOut included) -> score 0..1; left out when
    nobody asked for them (live tracking runs the blendshape model on demand, /v1/analyze
    and `faced analyze` unless told not to)."""
    landmarks: list[tuple[float, float, float]] | None = None
    """478 [x, y, z] in MediaPipe's normalized convention; only when asked for."""


class ImageSize(_Schema):
    width: int
    height: int


class ModelInfo(_Schema):
    name: str
    version: str
    sha256: str
    """sha256 of the model bundle the files came from."""


class Timing(_Schema):
    detect: float
    landmarks: float
    blendshapes: float
    total: float


class Analysis(_Schema):
    face_found: bool
    faces: list[Face]
    image: ImageSize
    model: ModelInfo
    timing_ms: Timing
    # The primary face, repeated (null when no face was found).
    bbox: tuple[float, float, float, float] | None
    score: float | None
    blendshapes: dict[str, float] | None
    head: Head | None
    eyes: Eyes | None
    landmarks: list[tuple[float, float, float]] | None = None
    timestamp_ms: int | None = None
    """The frame's timestamp in tracking mode."""


__all__ = ["Analysis", "Eye", "Eyes", "Face", "Head", "ImageSize", "ModelInfo", "Timing"]
