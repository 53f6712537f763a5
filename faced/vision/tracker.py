"""Per-stream face tracking (MediaPipe's VIDEO / LIVE_STREAM behaviour).

Owner: faced.vision (face pipeline). A ``Tracker`` holds one stream's state: the next
frame's regions of interest (from this frame's raw landmarks, squared, 1.5x) and the
One-Euro smoother. The detector only runs while fewer faces are tracked than wanted (first
frame, after a loss); a new detection replaces a tracked region it overlaps by IoU > 0.5.
Smoothing (when on and num_faces == 1, as in MediaPipe) feeds the result, blendshapes and
head pose; the next region always comes from the raw landmarks. A tracker is one stream:
frames must come in timestamp order; calls from different threads are safe (they serialise
on the pipeline's lock) but make no sense for one stream.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from faced.schemas.analysis import Analysis, Face
from faced.vision.landmarks import Roi, roi_from_landmarks
from faced.vision.pipeline import StageTimes, prepare
from faced.vision.smoothing import LandmarkSmoother

if TYPE_CHECKING:
    from faced.vision.pipeline import FacePipeline

ASSOCIATION_IOU: Final = 0.5


def associate(tracked: list[Roi], detected: list[Roi], limit: int) -> list[Roi]:
    """Tracked regions, then detections; each later region removes earlier ones it overlaps
    (MediaPipe's AssociationNormRectCalculator), clipped to ``limit``."""
    kept: list[Roi] = []
    for roi in (*tracked, *detected):
        kept = [k for k in kept if k.axis_aligned_iou(roi) <= ASSOCIATION_IOU]
        kept.append(roi)
    return kept[:limit]


class Tracker:
    def __init__(self, pipeline: FacePipeline, *, smoothing: bool = True) -> None:
        self._pipeline = pipeline
        self._rois: list[Roi] = []
        self._smoother = LandmarkSmoother() if smoothing and pipeline.num_faces == 1 else None
        self._last_timestamp_ms: int | None = None
        self._frame: npt.NDArray[np.uint8] | None = None
        self.last_detected = False
        """Whether the detector ran on the last processed frame."""
        self.frames = 0
        self.detections = 0

    @property
    def smoothing(self) -> bool:
        return self._smoother is not None

    @property
    def regions(self) -> tuple[Roi, ...]:
        """Where the next frame's faces will be looked for (empty: it will detect)."""
        return tuple(self._rois)

    def reset(self) -> None:
        """Forget the stream (e.g. after a seek or a camera switch)."""
        self._rois = []
        self._last_timestamp_ms = None
        if self._smoother is not None:
            self._smoother.reset()

    def process(
        self,
        image: npt.NDArray[np.uint8],
        timestamp_ms: int,
        landmarks: bool = False,
        *,
        bgr: bool = False,
    ) -> Analysis:
        """Analyze the next frame of the stream; timestamps must increase. A bad image or
        timestamp raises ValueError and leaves the stream's state as it was."""
        start = time.perf_counter()
        timestamp_ms = int(timestamp_ms)
        pipeline = self._pipeline
        times = StageTimes()
        with pipeline.lock:
            if self._last_timestamp_ms is not None and timestamp_ms <= self._last_timestamp_ms:
                raise ValueError(
                    f"timestamp {timestamp_ms} ms is not after the previous frame's "
                    f"{self._last_timestamp_ms} ms"
                )
            previous = self._frame
            frame = self._frame = prepare(image, bgr=bgr, out=previous)
            if previous is not None and previous.shape != frame.shape:
                # A new frame size (camera switch, resolution change): pixel ROIs and
                # smoothing state belong to the old one.
                self._rois = []
                if self._smoother is not None:
                    self._smoother.reset()
            self._last_timestamp_ms = timestamp_ms
            faces = self._track(frame, timestamp_ms, landmarks, times)
        height, width = frame.shape[:2]
        return pipeline.result(
            faces, width, height, times, start, with_landmarks=landmarks, timestamp_ms=timestamp_ms
        )

    def _track(
        self, frame: npt.NDArray[np.uint8], timestamp_ms: int, landmarks: bool, times: StageTimes
    ) -> list[Face]:
        pipeline = self._pipeline
        height, width = frame.shape[:2]
        rois = self._rois
        self.last_detected = len(rois) < pipeline.num_faces
        if self.last_detected:
            detected = pipeline.detect_rois(frame, pipeline.num_faces, times)
            rois = associate(rois, detected, pipeline.num_faces)
            self.detections += 1
        elif len(rois) > 1:
            rois = associate(rois, [], pipeline.num_faces)
        found = pipeline.run_landmarks(frame, rois, times)
        self._rois = [roi_from_landmarks(f.points, width, height) for f in found]
        self.frames += 1
        smoother = self._smoother
        if smoother is not None and not found:
            smoother.reset()
        faces = []
        for face in found:
            points = face.points
            if smoother is not None:
                points = smoother.apply(points, width, height, timestamp_ms * 1_000_000)
            faces.append(
                pipeline.describe(
                    face, points, width, height, with_landmarks=landmarks, times=times
                )
            )
        return faces
