"""Per-stream face tracking (MediaPipe's VIDEO / LIVE_STREAM behaviour).

Owns one stream's state: the next frame's regions, the smoother, the range chooser.
Does not own the models or the per-image steps (faced.vision.stages).
Why: MediaPipe's VIDEO mode runs the detector only when tracking has lost a face.

A ``Tracker`` holds one stream's state: the next
frame's regions of interest (from this frame's raw landmarks, squared, 1.5x) and the
One-Euro smoother. The detector only runs while fewer faces are tracked than wanted (first
frame, after a loss); a new detection replaces a tracked region it overlaps by IoU > 0.5.
Smoothing (when on and num_faces == 1, as in MediaPipe) feeds the result, blendshapes and
head pose; the next region always comes from the raw landmarks. A tracker is one stream:
frames must come in timestamp order; calls from different threads are safe (they serialise
on the pipeline's lock) but make no sense for one stream.

With ``vision.detector = auto`` a ``RangeChooser`` picks what the detector looks at on each
frame that needs one (tracked frames need none either way): short range over the whole
frame while the expected face is large; when it is small (a wide frame, the last face seen
was small, or short range has found nobody for a while) it searches, one view per frame:
full range over the whole frame, then full range over overlapping square tiles of the frame
(a 25 px face is too small for either model on a whole 640x480 frame, not in a 256 px
tile), then short range again, round and round until a face is found.
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np
import numpy.typing as npt

from faced.schemas.analysis import Analysis, Face
from faced.vision.detector import tiles
from faced.vision.landmarks import Roi, roi_from_landmarks
from faced.vision.smoothing import LandmarkSmoother
from faced.vision.stages import Stages, StageTimes, prepare

ASSOCIATION_IOU: Final = 0.5
# Below this face width, as a share of the frame's long side (= of the detector's letterboxed
# square), the short-range model stops finding faces reliably: `bench/detection_range.py`
# measured its last sure find at about 0.09 (57 px in 640x480) and first misses below.
SMALL_FACE: Final = 0.12
# A frame this much wider than high letterboxes into less than 57 % of the detector's input,
# so every face is small to it (16:9 and wider).
WIDE_ASPECT: Final = 1.7
# Short range finding nobody for this long (stream time) makes auto search.
SHORT_PATIENCE_MS: Final = 1000
# Search tiles: full range reliably finds faces down to about 7 % of its square's side
# (bench/detection_range.py), so 256 px tiles reach faces of ~20 px; they overlap by more
# than the widest face the whole-frame view might miss, so no such face is cut by a seam.
TILE_SIZE: Final = 256
TILE_OVERLAP: Final = 64
# Full range on a whole frame stops finding faces below about 7 % of its long side
# (bench/detection_range.py); IMAGE mode's tiles overlap by a little more than that.
WHOLE_FRAME_SMALLEST: Final = 0.08

View = tuple[str, tuple[int, int, int] | None]
"""A detector (short/full) and the square tile (left, top, side px) it looks at, or None for
the whole frame."""


class RangeChooser:
    """What a stream's next detection frame looks at under ``vision.detector = auto``.
    Pure bookkeeping: ``choose`` before detecting, ``observe`` after each frame's
    landmarks."""

    def __init__(self) -> None:
        self.small: bool | None = None
        """Whether the last face seen was small (None: none seen yet)."""
        self._empty_since_ms: int | None = None
        self._cursor = 0
        self._views: tuple[tuple[int, int], list[View]] | None = None

    def reset(self) -> None:
        self.small = None
        self._empty_since_ms = None
        self._cursor = 0

    def views(self, width: int, height: int) -> list[View]:
        """The search cycle for a frame size: full range whole, its tiles, short range."""
        if self._views is None or self._views[0] != (width, height):
            corners = tiles(width, height, TILE_SIZE, TILE_OVERLAP)
            cycle: list[View] = [("full", None)]
            cycle += [("full", (x, y, TILE_SIZE)) for x, y in corners]
            cycle.append(("short", None))
            self._views = ((width, height), cycle)
        return self._views[1]

    def choose(self, width: int, height: int, timestamp_ms: int) -> View:
        wide = max(width, height) >= WIDE_ASPECT * min(width, height)
        since = self._empty_since_ms
        waited = since is not None and timestamp_ms - since >= SHORT_PATIENCE_MS
        if not (wide or self.small or waited):
            return ("short", None)
        cycle = self.views(width, height)
        view = cycle[self._cursor % len(cycle)]
        self._cursor += 1
        return view

    def observe(self, face_widths: list[float], long_side: int, timestamp_ms: int) -> None:
        """``face_widths``: px widths of this frame's faces (empty: nobody)."""
        if face_widths:
            self.small = max(face_widths) < SMALL_FACE * long_side
            self._empty_since_ms = None
            self._cursor = 0
        elif self._empty_since_ms is None:
            self._empty_since_ms = timestamp_ms


def image_tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """IMAGE mode's search tiles (left, top, side px) for a photo nobody was found in whole.
    A tracker can afford small tiles, one per frame; a photo gets one look, so its tiles
    grow with it: they overlap by more than the smallest face the whole-frame look finds
    (no face it missed is cut by a seam) and are three overlaps wide (fewer tiles; full
    range still finds faces down to ~7 % of a tile). On 640x480 they are the tracker's."""
    overlap = max(TILE_OVERLAP, int(np.ceil(WHOLE_FRAME_SMALLEST * max(width, height))))
    size = max(TILE_SIZE, 3 * overlap)
    return [(x, y, size) for x, y in tiles(width, height, size, overlap)]


def associate(tracked: list[Roi], detected: list[Roi], limit: int) -> list[Roi]:
    """Tracked regions, then detections; each later region removes earlier ones it overlaps
    (MediaPipe's AssociationNormRectCalculator), clipped to ``limit``."""
    kept: list[Roi] = []
    for roi in (*tracked, *detected):
        kept = [k for k in kept if k.axis_aligned_iou(roi) <= ASSOCIATION_IOU]
        kept.append(roi)
    return kept[:limit]


class Tracker:
    def __init__(self, pipeline: Stages, *, smoothing: bool = True) -> None:
        self._pipeline = pipeline
        self._rois: list[Roi] = []
        self._smoother = LandmarkSmoother() if smoothing and pipeline.num_faces == 1 else None
        self._range = RangeChooser() if pipeline.detector_mode == "auto" else None
        self._last_timestamp_ms: int | None = None
        self._frame: npt.NDArray[np.uint8] | None = None
        self.last_detected = False
        """Whether the detector ran on the last processed frame."""
        self.frames = 0
        self.detections = 0
        self.last_view: View | None = None
        """What the last detection frame looked at: detector (short/full) and tile."""

    @property
    def smoothing(self) -> bool:
        return self._smoother is not None

    def detector_report(self) -> dict[str, object]:
        """For /health: the detector setting, what the last detection frame looked at and
        how often this stream needed a detector (tracked frames need none)."""
        view = self.last_view
        last = None if view is None else view[0] if view[1] is None else f"{view[0]} (tile)"
        return {
            "mode": self._pipeline.detector_mode,
            "last": last,
            "detection_frames": self.detections,
            "frames": self.frames,
        }

    @property
    def regions(self) -> tuple[Roi, ...]:
        """Where the next frame's faces will be looked for (empty: it will detect)."""
        return tuple(self._rois)

    def next_footprint(self) -> tuple[int, int, int, int] | None:
        """The pixels the next frame's analysis will read, (left, top, right, bottom) of a
        frame the size of the last one, when it only tracks; None when it will run the
        detector (first frame, a face lost, fewer tracked than wanted), which reads the
        whole frame. A video reader decodes only this band (faced.vision.video)."""
        rois = self._rois
        frame = self._frame
        if frame is None or not rois or len(rois) < self._pipeline.num_faces:
            return None
        height, width = frame.shape[:2]
        boxes = [roi.footprint(width, height) for roi in rois]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    def reset(self) -> None:
        """Forget the stream (e.g. after a seek or a camera switch)."""
        self._rois = []
        self._last_timestamp_ms = None
        if self._smoother is not None:
            self._smoother.reset()
        if self._range is not None:
            self._range.reset()

    def process(
        self,
        image: npt.NDArray[np.uint8],
        timestamp_ms: int,
        landmarks: bool = False,
        *,
        bgr: bool = False,
        blendshapes: bool = True,
    ) -> Analysis:
        """Analyze the next frame of the stream; timestamps must increase. A bad image or
        timestamp raises ValueError and leaves the stream's state as it was. Without
        ``blendshapes`` the blendshape model is not run (faces carry none)."""
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
            faces = self._track(frame, timestamp_ms, landmarks, times, blendshapes)
        height, width = frame.shape[:2]
        return pipeline.result(
            faces, width, height, times, start, with_landmarks=landmarks, timestamp_ms=timestamp_ms
        )

    def _track(
        self,
        frame: npt.NDArray[np.uint8],
        timestamp_ms: int,
        landmarks: bool,
        times: StageTimes,
        blendshapes: bool,
    ) -> list[Face]:
        pipeline = self._pipeline
        height, width = frame.shape[:2]
        rois = self._rois
        self.last_detected = len(rois) < pipeline.num_faces
        if self.last_detected:
            view: View = (pipeline.detector.spec.name, None)
            if self._range is not None:
                view = self._range.choose(width, height, timestamp_ms)
            self.last_view = view
            detected = pipeline.detect_rois(frame, pipeline.num_faces, times, *view)
            rois = associate(rois, detected, pipeline.num_faces)
            self.detections += 1
        elif len(rois) > 1:
            rois = associate(rois, [], pipeline.num_faces)
        found = pipeline.run_landmarks(frame, rois, times)
        self._rois = [roi_from_landmarks(f.points, width, height) for f in found]
        self.frames += 1
        if self._range is not None:
            xs = [f.points[:, 0] for f in found]  # max - min: half of np.ptp's cost
            widths = [float(x.max() - x.min()) * width for x in xs]
            self._range.observe(widths, max(width, height), timestamp_ms)
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
                    face,
                    points,
                    width,
                    height,
                    with_landmarks=landmarks,
                    times=times,
                    blendshapes=blendshapes,
                )
            )
        return faces
