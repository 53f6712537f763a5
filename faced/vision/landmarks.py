"""The 478-point face landmark model: regions of interest, the rotated crop, projection back.

Owns the landmark model's crop, its run and the projection of its points back to the image.
Does not own where regions come from per frame (faced.vision.tracker, faced.vision.stages).
Why: the crop decides the landmarks' accuracy; it follows MediaPipe's exactly.

A region of interest (``Roi``) is a rotated rectangle
in image pixels. From a detection it is the detector's box scaled 1.5x, rotated so the eyes
are level, not squared; from the previous frame's landmarks (tracking) it is their
bounding box, squared on the long side, scaled 1.5x. The crop stretches the rectangle onto
256x256 (aspect not kept) with replicated borders, exactly like MediaPipe's ImageToTensor.
See ../shared/docs/face-pipeline-facts.md §2-4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faced.vision.detector import LEFT_EYE, RIGHT_EYE, Detection
from faced.vision.runtime import InferenceModel

FloatArray = npt.NDArray[np.float32]

CROP_SIZE: Final = 256
NUM_LANDMARKS: Final = 478
ROI_SCALE: Final = 1.5
MIN_PRESENCE: Final = 0.5
# Eye corners the tracking ROI is levelled on (image-left eye outer corner, other eye's).
TRACKING_ROTATION_FROM: Final = 33
TRACKING_ROTATION_TO: Final = 263
# Pixels of safety beyond a region's bounding box, for OpenCV's 1/32-px fixed-point source
# coordinates and the bilinear neighbour (the box alone held for the 300 random regions of
# tests/vision/test_jpeg_band.py; one pixel less than it fails).
FOOTPRINT_MARGIN: Final = 2


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated rectangle in image pixels; ``rotation`` in radians."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float

    def crop_matrix(self, size: int = CROP_SIZE) -> npt.NDArray[np.float64]:
        """Affine image px -> crop px that maps the rectangle's corners to the crop's."""
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        sx, sy = size / self.width, size / self.height
        half = size / 2
        return np.array(
            [
                [sx * cos, sx * sin, half - sx * (self.cx * cos + self.cy * sin)],
                [-sy * sin, sy * cos, half - sy * (-self.cx * sin + self.cy * cos)],
            ],
            dtype=np.float64,
        )

    def footprint(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The pixels of a width x height image the crop reads: (left, top, right, bottom),
        right and bottom exclusive, never empty. The rotated rectangle's bounding box and a
        margin, clamped to the image (replicated borders read its edge pixels)."""
        cos, sin = abs(math.cos(self.rotation)), abs(math.sin(self.rotation))
        half_x = (self.width * cos + self.height * sin) / 2
        half_y = (self.width * sin + self.height * cos) / 2
        left = min(max(math.floor(self.cx - half_x) - FOOTPRINT_MARGIN, 0), width - 1)
        top = min(max(math.floor(self.cy - half_y) - FOOTPRINT_MARGIN, 0), height - 1)
        right = max(min(math.ceil(self.cx + half_x) + FOOTPRINT_MARGIN + 1, width), left + 1)
        bottom = max(min(math.ceil(self.cy + half_y) + FOOTPRINT_MARGIN + 1, height), top + 1)
        return left, top, right, bottom

    def axis_aligned_iou(self, other: Roi) -> float:
        """IoU ignoring rotation, as MediaPipe's rect association does."""
        ix = min(self.cx + self.width / 2, other.cx + other.width / 2) - max(
            self.cx - self.width / 2, other.cx - other.width / 2
        )
        iy = min(self.cy + self.height / 2, other.cy + other.height / 2) - max(
            self.cy - self.height / 2, other.cy - other.height / 2
        )
        if ix <= 0 or iy <= 0:
            return 0.0
        inter = ix * iy
        return inter / (self.width * self.height + other.width * other.height - inter)


def roi_from_detection(detection: Detection, width: int, height: int) -> Roi:
    xmin, ymin, xmax, ymax = (float(v) for v in detection.box)
    x0, y0 = detection.keypoints[RIGHT_EYE]
    x1, y1 = detection.keypoints[LEFT_EYE]
    rotation = normalize_radians(-math.atan2(-(y1 - y0) * height, (x1 - x0) * width))
    return Roi(
        cx=(xmin + xmax) / 2 * width,
        cy=(ymin + ymax) / 2 * height,
        width=(xmax - xmin) * width * ROI_SCALE,
        height=(ymax - ymin) * height * ROI_SCALE,
        rotation=rotation,
    )


def roi_from_landmarks(points: FloatArray, width: int, height: int) -> Roi:
    """Tracking ROI from the previous frame's raw landmarks (normalized, (478, 3))."""
    xs = points[:, 0]
    ys = points[:, 1]
    xmin, xmax = float(xs.min()), float(xs.max())
    ymin, ymax = float(ys.min()), float(ys.max())
    x0, y0 = points[TRACKING_ROTATION_FROM, :2]
    x1, y1 = points[TRACKING_ROTATION_TO, :2]
    rotation = normalize_radians(-math.atan2(-(y1 - y0) * height, (x1 - x0) * width))
    side = max((xmax - xmin) * width, (ymax - ymin) * height) * ROI_SCALE
    return Roi(
        cx=(xmin + xmax) / 2 * width,
        cy=(ymin + ymax) / 2 * height,
        width=side,
        height=side,
        rotation=rotation,
    )


@dataclass(frozen=True, slots=True)
class FaceLandmarks:
    points: FloatArray
    """(478, 3) in MediaPipe's normalized image convention (x/W, y/H, z scaled like x)."""
    presence: float
    tongue_out: float
    roi: Roi


class LandmarkModel:
    """Runs the landmark model on one ROI of an RGB uint8 image."""

    def __init__(self, model: InferenceModel, *, min_presence: float = MIN_PRESENCE) -> None:
        self._model = model
        self.min_presence = min_presence
        sizes = [int(np.prod(t.shape)) for t in model.outputs]
        if NUM_LANDMARKS * 3 not in sizes:
            raise ValueError(f"landmark model outputs {sizes}: none holds 478 x 3 points")
        # Outputs by size: 1434 landmarks; [1,1,1,1] presence logit; [1,1] tongue score.
        self._points_out = sizes.index(NUM_LANDMARKS * 3)
        singles = [i for i, t in enumerate(model.outputs) if int(np.prod(t.shape)) == 1]
        self._presence_out = next(i for i in singles if len(model.outputs[i].shape) == 4)
        self._tongue_out = next((i for i in singles if i != self._presence_out), None)
        self._min_logit = math.log(min_presence / (1 - min_presence))
        # Reused buffers: fresh large arrays cost page faults every frame (not thread-safe:
        # the owning pipeline serialises calls).
        self._tensor = np.empty((1, CROP_SIZE, CROP_SIZE, 3), dtype=np.float32)
        self._patch = {c: np.empty((CROP_SIZE, CROP_SIZE, c), dtype=np.uint8) for c in (3, 4)}

    @property
    def model(self) -> InferenceModel:
        """The bare model (benchmarks time it alone)."""
        return self._model

    def crop(
        self,
        image: npt.NDArray[np.uint8],
        roi: Roi,
        out: npt.NDArray[np.float32] | None = None,
    ) -> npt.NDArray[np.float32]:
        """The model's input (1 x 256 x 256 x 3) for ``roi`` of an RGB or RGBA image, in
        ``out`` or else an array of its own, reused (RGBA warps faster: OpenCV's 4-channel
        bilinear path is vectorised, the 3-channel one less so)."""
        patch = cv2.warpAffine(
            image,
            roi.crop_matrix(),
            (CROP_SIZE, CROP_SIZE),
            dst=self._patch[image.shape[2]],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if patch.shape[2] == 4:
            patch = cv2.cvtColor(patch, cv2.COLOR_RGBA2RGB, dst=self._patch[3])
        # x * float32(1/255) into the float tensor. OpenCV's weighted sum (patch * 1/255 +
        # patch * 0 + 0) converts and scales in one vectorised pass, bit for bit what
        # np.multiply(patch, np.float32(1 / 255)) gives for all 256 values, ~3x faster
        # (numpy casts uint8 to float32 through a buffer, then multiplies).
        tensor = self._tensor if out is None else out
        cv2.addWeighted(patch, 1 / 255, patch, 0.0, 0.0, dst=tensor[0], dtype=cv2.CV_32F)
        return tensor

    def run(self, image: npt.NDArray[np.uint8], roi: Roi) -> FaceLandmarks | None:
        """Landmarks of the face in ``roi``, or None when the model says no face is there
        (presence must be strictly above the threshold)."""
        # The crop is written straight into the model's input buffer (no 768 KiB copy).
        outputs = self._model.run_filling(lambda inputs: self.crop(image, roi, inputs[0]))
        logit = float(outputs[self._presence_out].reshape(-1)[0])
        # sigmoid(logit) > p  <=>  logit > log(p / (1 - p)); NaN fails both.
        if not logit > self._min_logit:
            return None
        presence = 1 / (1 + math.exp(-logit))
        tongue = (
            float(outputs[self._tongue_out].reshape(-1)[0]) if self._tongue_out is not None else 0.0
        )
        raw = outputs[self._points_out].reshape(NUM_LANDMARKS, 3)
        height, width = image.shape[:2]
        return FaceLandmarks(project(raw, roi, width, height), presence, tongue, roi)


_CROP_CENTRE: Final = np.array([CROP_SIZE / 2, CROP_SIZE / 2, 0], dtype=np.float32)


def project(raw: FloatArray, roi: Roi, width: int, height: int) -> FloatArray:
    """Crop-pixel landmarks (478, 3) -> normalized image coordinates."""
    cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
    a, b = roi.width / CROP_SIZE, roi.height / CROP_SIZE
    # x' = a cos (x - 128) - b sin (y - 128) + cx, in pixels, then / W; z scales with x.
    transform = np.array(
        [
            [a * cos / width, a * sin / height, 0.0],
            [-b * sin / width, b * cos / height, 0.0],
            [0.0, 0.0, math.hypot(a * cos / width, a * sin / height)],
        ],
        dtype=np.float32,
    )
    centred: FloatArray = raw - _CROP_CENTRE
    out: FloatArray = centred @ transform
    out[:, 0] += roi.cx / width
    out[:, 1] += roi.cy / height
    return out
