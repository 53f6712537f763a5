"""The face pipeline's stages: the loaded models and the per-image steps both modes run.

Owns ``Stages``: verifying and loading the models once (detectors, landmarks, blendshapes,
geometry) with the lock that serialises their use, and the steps detect -> ROI -> landmarks
-> blendshapes, head pose, eyes -> ``Analysis``; ``prepare`` (the working RGBA frame) and
``StageTimes``.
Does not own the modes: IMAGE mode and the tracker factory are faced.vision.pipeline's,
per-stream state (regions, smoothing, range choice) is faced.vision.tracker's.
Why: the pipeline makes trackers and trackers run the pipeline's steps; with the steps here
both import this module and neither imports the other back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt

from faced.schemas.analysis import Analysis, Eye, Eyes, Face, Head, ImageSize, ModelInfo, Timing
from faced.vision.blendshapes import ARKIT_NAMES, BlendshapeModel
from faced.vision.detector import FULL_RANGE, SHORT_RANGE, FaceDetector
from faced.vision.eyes import EyeState, eye_states
from faced.vision.geometry import GeometryPipeline
from faced.vision.landmarks import (
    FaceLandmarks,
    LandmarkModel,
    Roi,
    roi_from_detection,
)
from faced.vision.models import ModelStore
from faced.vision.runtime import Runtime

DETECTOR_FILE = SHORT_RANGE.file
FULL_RANGE_FILE = FULL_RANGE.file
DetectorMode = Literal["short", "full", "auto"]
DETECTOR_MODES: Final[tuple[DetectorMode, ...]] = ("short", "full", "auto")

LANDMARKS_FILE = "face_landmarks_detector.tflite"
BLENDSHAPES_FILE = "face_blendshapes.tflite"
GEOMETRY_FILE = "geometry_pipeline_metadata_landmarks.binarypb"
MAX_FACES = 8
Image = npt.NDArray[np.uint8]


def model_files(detector: DetectorMode = "short") -> tuple[str, ...]:
    """The model files a pipeline with this ``vision.detector`` runs."""
    detectors = {"short": (DETECTOR_FILE,), "full": (FULL_RANGE_FILE,)}
    return (
        *detectors.get(detector, (DETECTOR_FILE, FULL_RANGE_FILE)),
        LANDMARKS_FILE,
        BLENDSHAPES_FILE,
    )


def prepare(
    image: npt.NDArray[np.uint8],
    *,
    bgr: bool = False,
    out: Image | None = None,
    keep_rgb: bool = False,
) -> Image:
    """The working frame: contiguous H x W x 4 RGBA uint8 from grey, RGB(A) or BGR(A)
    input (one conversion per frame; OpenCV warps 4-channel images markedly faster than
    3-channel ones, with identical results), written into ``out`` when it has the right
    shape. With ``keep_rgb`` an RGB image is used as it is (no full-size copy: the right
    choice for one-off, possibly huge images). ValueError for anything else."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"image must be H x W, H x W x 3 or H x W x 4, got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: {image.shape}")
    image = np.ascontiguousarray(image)
    if keep_rgb and image.ndim == 3 and image.shape[2] == 3 and not bgr:
        return image
    if image.ndim == 2:
        code = cv2.COLOR_GRAY2RGBA
    elif image.shape[2] == 4:
        if not bgr:
            return image
        code = cv2.COLOR_BGRA2RGBA
    else:
        code = cv2.COLOR_BGR2RGBA if bgr else cv2.COLOR_RGB2RGBA
    if out is None or out.shape != (*image.shape[:2], 4):
        return cast(Image, cv2.cvtColor(image, code))
    return cast(Image, cv2.cvtColor(image, code, dst=out))


@dataclass(slots=True)
class StageTimes:
    detect: float = 0.0
    landmarks: float = 0.0
    blendshapes: float = 0.0
    pose: float = 0.0


class Stages:
    """Verified models and the stateless per-image steps; see the module docstring."""

    def __init__(
        self,
        store: ModelStore,
        *,
        threads: int = 1,
        num_faces: int = 1,
        runtime: Runtime | None = None,
        detector: DetectorMode = "short",
    ) -> None:
        if detector not in DETECTOR_MODES:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTOR_MODES)}, got {detector!r}"
            )
        if not 1 <= num_faces <= MAX_FACES:
            raise ValueError(f"num_faces must be 1..{MAX_FACES}, got {num_faces}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        # Each pipeline is driven by one thread (a worker or a tracker), and N of them are
        # meant to use N cores; OpenCV's own thread pool would add a second thread to the
        # same small images and take the core another worker or the event loop needs (it
        # costs CPU per /v1/analyze request and saves the worker nothing: `faced bench
        # analyze`). Process-wide, and every pipeline wants the same.
        cv2.setNumThreads(1)
        # The back end and precision (vision.backend/precision); LiteRT fp32 by default.
        runtime = runtime if runtime is not None else Runtime(threads=threads)
        runtime.check_available()
        self.runtime = runtime
        self.num_faces = num_faces
        self.threads = runtime.threads
        self.store = store
        # One frame at a time per pipeline: the models and their reused buffers are
        # shared by analyze() and every tracker made here (uncontended: negligible).
        self.lock = threading.Lock()
        self.detector_mode: DetectorMode = detector
        # Only the models the mode can use are loaded (the full-range one is 1 MB more).
        self.detectors: dict[str, FaceDetector] = {}
        for spec in (SHORT_RANGE, FULL_RANGE):
            if detector in (spec.name, "auto"):
                self.detectors[spec.name] = FaceDetector(runtime.open(store, spec.file), spec)
        self.detector = self.detectors["full" if detector == "full" else "short"]
        """The detector used unless a call names another (auto: short range)."""
        self.landmark_model = LandmarkModel(runtime.open(store, LANDMARKS_FILE))
        self.blendshape_model = BlendshapeModel(runtime.open(store, BLENDSHAPES_FILE))
        self.geometry = GeometryPipeline.from_metadata(store.read(GEOMETRY_FILE))
        manifest = store.manifest
        self.model_info = ModelInfo(
            name="face_landmarker",
            version=manifest.bundle_version,
            sha256=manifest.bundle_sha256,
        )

    @staticmethod
    def verify(store: ModelStore, runtime: Runtime, detector: DetectorMode = "short") -> ModelInfo:
        """Verify every file ``__init__`` would load for ``detector`` (listed in
        ``runtime.loaded``) without building an interpreter; the bundle's ModelInfo."""
        runtime.check_available()
        for spec in (SHORT_RANGE, FULL_RANGE):
            if detector in (spec.name, "auto"):
                runtime.verify(store, spec.file)
        runtime.verify(store, LANDMARKS_FILE)
        runtime.verify(store, BLENDSHAPES_FILE)
        store.read(GEOMETRY_FILE)
        manifest = store.manifest
        return ModelInfo(
            name="face_landmarker", version=manifest.bundle_version, sha256=manifest.bundle_sha256
        )

    # -- the steps -------------------------------------------------------------------------

    def detect_rois(
        self,
        frame: Image,
        max_faces: int,
        times: StageTimes,
        detector: str | None = None,
        tile: tuple[int, int, int] | None = None,
    ) -> list[Roi]:
        """Regions of the faces ``detector`` (short/full; default: the mode's) finds in the
        frame, or only in its square ``tile`` (left, top, side px)."""
        began = time.perf_counter()
        height, width = frame.shape[:2]
        model = self.detector if detector is None else self.detectors[detector]
        detections = model.detect(frame, max_faces, tile)
        rois = [roi_from_detection(d, width, height) for d in detections]
        times.detect += time.perf_counter() - began
        return rois

    def run_landmarks(
        self, frame: Image, rois: Sequence[Roi], times: StageTimes
    ) -> list[FaceLandmarks]:
        began = time.perf_counter()
        model = self.landmark_model
        found = [lm for lm in (model.run(frame, roi) for roi in rois) if lm]
        times.landmarks += time.perf_counter() - began
        return found

    def describe(
        self,
        face: FaceLandmarks,
        points: npt.NDArray[np.float32],
        width: int,
        height: int,
        *,
        with_landmarks: bool,
        times: StageTimes,
        blendshapes: bool = True,
    ) -> Face:
        """Blendshapes (unless not wanted: the model is not run), head pose, eyes and box
        of one face from (possibly smoothed) ``points`` in a width x height image."""
        began = time.perf_counter()
        shapes = None
        if blendshapes:
            scores = self.blendshape_model.run(points, width, height, face.tongue_out)
            rounded = scores.astype(np.float64).round(5).tolist()
            shapes = dict(zip(ARKIT_NAMES, rounded, strict=True))
        after_blendshapes = time.perf_counter()
        pose = self.geometry.solve(points, width, height)
        left, right = eye_states(points, width, height)
        box = _bbox(points)
        result = Face(
            bbox=(box[0], box[1], box[2], box[3]),
            score=round(face.presence, 5),
            blendshapes=shapes,
            head=Head(
                yaw=round(pose.yaw, 3),
                pitch=round(pose.pitch, 3),
                roll=round(pose.roll, 3),
                matrix=pose.matrix.round(6).tolist(),
            ),
            eyes=Eyes(left=_eye(left), right=_eye(right)),
            landmarks=(points.astype(np.float64).round(6).tolist() if with_landmarks else None),
        )
        if blendshapes:  # a model that did not run takes 0 ms, not the if's microsecond
            times.blendshapes += after_blendshapes - began
        times.pose += time.perf_counter() - after_blendshapes
        return result

    def result(
        self,
        faces: list[Face],
        width: int,
        height: int,
        times: StageTimes,
        start: float,
        *,
        with_landmarks: bool,
        timestamp_ms: int | None = None,
    ) -> Analysis:
        if len(faces) > 1:
            faces.sort(key=lambda f: f.bbox[2] * f.bbox[3], reverse=True)
        primary = faces[0] if faces else None
        total = time.perf_counter() - start
        return Analysis(
            face_found=primary is not None,
            faces=faces,
            image=ImageSize(width=width, height=height),
            model=self.model_info,
            timing_ms=Timing(
                detect=round(times.detect * 1e3, 3),
                landmarks=round(times.landmarks * 1e3, 3),
                blendshapes=round(times.blendshapes * 1e3, 3),
                total=round(total * 1e3, 3),
            ),
            bbox=primary.bbox if primary else None,
            score=primary.score if primary else None,
            blendshapes=primary.blendshapes if primary else None,
            head=primary.head if primary else None,
            eyes=primary.eyes if primary else None,
            landmarks=primary.landmarks if primary and with_landmarks else None,
            timestamp_ms=timestamp_ms,
        )


def _bbox(points: npt.NDArray[np.float32]) -> list[float]:
    """[x, y, w, h] of the points' extent, clipped to the image, rounded to 5 places.
    Column by column: numpy reduces a (478, 2) array along its first axis three times
    slower than its two columns one by one, and np.clip's wrapper costs more than the
    clipping (same float32 values, same rounding as the array form)."""
    xs, ys = points[:, 0], points[:, 1]
    ends = np.array((xs.min(), ys.min(), xs.max(), ys.max()), dtype=np.float32)
    np.minimum(np.maximum(ends, 0.0, out=ends), 1.0, out=ends)
    ends[2:] -= ends[:2]
    box: list[float] = ends.astype(np.float64).round(5).tolist()
    return box


def _eye(state: EyeState) -> Eye:
    return Eye(
        gaze=(round(state.gaze[0], 4), round(state.gaze[1], 4)),
        openness=round(state.openness, 4),
    )
