"""BlazeFace face detection (short and full range), exactly as MediaPipe's graphs do it.

Owns BlazeFace's pre- and post-processing and running its two models.
Does not own regions of interest or the choice of model per frame (faced.vision.tracker).
Why: the detector's numbers must match MediaPipe's to the pixel, so they are in one place.

Letterbox the whole image to a centred square
(padding black), the model's input size, [-1, 1]; decode its SSD anchors; clipped sigmoid
scores; weighted non-maximum suppression; project back through the letterbox. The two
models differ only in the numbers of their ``DetectorSpec`` (SHORT_RANGE, FULL_RANGE);
see ../shared/docs/face-pipeline-facts.md §1 for the short-range one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

from faced.vision.runtime import InferenceModel

FloatArray = npt.NDArray[np.float32]

INPUT_SIZE: Final = 128
MIN_SCORE: Final = 0.5
NMS_IOU: Final = 0.5
NUM_COORDS: Final = 16
SCORE_CLIP: Final = 100.0
NUM_KEYPOINTS: Final = 6
# Keypoint order of the model, in the subject's terms.
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH, RIGHT_EAR, LEFT_EAR = range(NUM_KEYPOINTS)


def ssd_anchors(
    input_size: int = INPUT_SIZE,
    strides: tuple[int, ...] = (8, 16, 16, 16),
    anchors_per_layer: int = 2,
) -> FloatArray:
    """Anchor centres (N, 2) as x, y in [0, 1]; order row, column, anchor. Layers that share
    a stride share a grid, their anchors interleaved per cell (MediaPipe's
    SsdAnchorsCalculator with fixed anchor size: every anchor is 1 x 1)."""
    grids: list[npt.NDArray[np.floating]] = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        same = 0
        while layer + same < len(strides) and strides[layer + same] == stride:
            same += 1
        cells = -(-input_size // stride)  # ceil
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(centres, centres, indexing="ij")
        grid = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
        grids.append(np.repeat(grid, anchors_per_layer * same, axis=1).reshape(-1, 2))
        layer += same
    return np.concatenate(grids).astype(np.float32)


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """One BlazeFace model: its input, SSD anchors and decode options."""

    name: str
    """short or full (vision.detector)."""
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int
    """2 with an interpolated-scale anchor (interpolated_scale_aspect_ratio 1.0), else 1."""
    num_boxes: int
    min_score: float
    nms_iou: float

    def anchors(self) -> FloatArray:
        return ssd_anchors(self.input_size, self.strides, self.anchors_per_layer)


# The Face Landmarker bundle's detector (face-pipeline-facts §1; MediaPipe's
# tasks/cc/vision/face_detector/face_detector_graph.cc defaults for a 128 px model).
SHORT_RANGE: Final = DetectorSpec(
    name="short",
    file="face_detector.tflite",
    input_size=INPUT_SIZE,
    strides=(8, 16, 16, 16),
    anchors_per_layer=2,
    num_boxes=896,
    min_score=MIN_SCORE,
    nms_iou=NMS_IOU,
)
# MediaPipe's published graph config for the full-range model, google-ai-edge/mediapipe
# (commit 85c0cdc), mediapipe/modules/face_detection/face_detection_full_range.pbtxt:
# tensor 192x192, num_layers 1, strides [4], interpolated_scale_aspect_ratio 0.0,
# num_boxes 2304, x/y/w/h_scale 192, min_score_thresh 0.6; and the shared
# face_detection.pbtxt: SsdAnchorsCalculator min_scale 0.1484375, max_scale 0.75, anchor
# offsets 0.5, aspect_ratios [1.0], fixed_anchor_size true (so one 1x1 anchor per cell of a
# 48x48 grid); TensorsToDetections num_coords 16, keypoint offset 4, 6 keypoints, sigmoid,
# score_clipping_thresh 100, reverse_output_order (x before y); NonMaxSuppression
# WEIGHTED, IoU, min_suppression_threshold 0.3; ImageToTensor keep_aspect_ratio, [-1, 1],
# BORDER_ZERO (the same letterbox as the short-range model). face_detector_graph.cc uses
# the same numbers for a 192 px model without metadata.
FULL_RANGE: Final = DetectorSpec(
    name="full",
    file="face_detection_full_range.tflite",
    input_size=192,
    strides=(4,),
    anchors_per_layer=1,
    num_boxes=2304,
    min_score=0.6,
    nms_iou=0.3,
)
SPECS: Final = {spec.name: spec for spec in (SHORT_RANGE, FULL_RANGE)}


@dataclass(frozen=True, slots=True)
class Detection:
    """One face in normalized image coordinates (x right, y down, 0..1 across the image)."""

    box: FloatArray
    """[xmin, ymin, xmax, ymax]."""
    keypoints: FloatArray
    """(6, 2): right eye, left eye, nose tip, mouth, right ear, left ear."""
    score: float


@dataclass(frozen=True, slots=True)
class Letterbox:
    """The square the detector sees, side ``size`` px, its top-left corner at (``left``,
    ``top``) in a ``width`` x ``height`` image; by default the whole image padded into a
    centred square. Image pixels outside the square are not seen, square pixels outside the
    image are black."""

    width: int
    height: int
    size: int
    left: float | None = None
    top: float | None = None

    def __post_init__(self) -> None:
        if self.left is None:
            object.__setattr__(self, "left", (self.width - self.size) / 2)
        if self.top is None:
            object.__setattr__(self, "top", (self.height - self.size) / 2)

    @classmethod
    def for_image(cls, width: int, height: int) -> Letterbox:
        return cls(width, height, max(width, height))

    @property
    def origin(self) -> tuple[float, float]:
        return float(self.left or 0.0), float(self.top or 0.0)

    def matrix(self, output: int = INPUT_SIZE) -> npt.NDArray[np.float64]:
        """Affine image px -> tensor px, mapping the square's corners onto the tensor's
        corners (MediaPipe's ImageToTensor convention)."""
        scale = output / self.size
        left, top = self.origin
        return np.array([[scale, 0, -left * scale], [0, scale, -top * scale]], dtype=np.float64)

    def to_image(self, points: FloatArray) -> FloatArray:
        """Tensor-normalized (..., 2) points -> image-normalized points."""
        left, top = self.origin
        out = np.empty_like(points)
        out[..., 0] = (points[..., 0] * self.size + left) / self.width
        out[..., 1] = (points[..., 1] * self.size + top) / self.height
        return out

    def to_tensor(self, points: FloatArray) -> FloatArray:
        """Image-normalized (..., 2) points -> tensor-normalized points (inverse of to_image)."""
        left, top = self.origin
        out = np.empty_like(points)
        out[..., 0] = (points[..., 0] * self.width - left) / self.size
        out[..., 1] = (points[..., 1] * self.height - top) / self.size
        return out


def tiles(width: int, height: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size`` px squares covering a ``width`` x ``height`` image,
    neighbours overlapping by at least ``overlap`` px (so any face up to that wide lies
    wholly inside one), row by row; [] when one square would hold the whole image."""
    if max(width, height) <= size:
        return []

    def starts(extent: int) -> list[int]:
        if extent <= size:
            return [(extent - size) // 2]  # centred; the rest of the square is padding
        count = -(-(extent - overlap) // (size - overlap))  # ceil
        step = (extent - size) / (count - 1) if count > 1 else 0
        return [round(i * step) for i in range(count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


def iou(box: FloatArray, boxes: FloatArray) -> FloatArray:
    """Intersection over union of one [xmin, ymin, xmax, ymax] box with each of ``boxes``."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


def weighted_nms(
    boxes: FloatArray, keypoints: FloatArray, scores: FloatArray, threshold: float = NMS_IOU
) -> list[Detection]:
    """MediaPipe's WEIGHTED suppression: the best remaining box takes every box overlapping
    it by IoU > threshold (itself included); corners and keypoints become the score-weighted
    mean of that group, the score stays the best one's."""
    order = np.argsort(-scores, kind="stable")
    remaining = order
    result: list[Detection] = []
    while remaining.size:
        top = remaining[0]
        overlaps = iou(boxes[top], boxes[remaining])
        group = remaining[overlaps > threshold]
        remaining = remaining[overlaps <= threshold]
        if group.size == 0:  # NaN-free boxes always overlap themselves; belt and braces
            group = np.array([top])
            remaining = remaining[remaining != top]
        weights = scores[group]
        total = float(weights.sum())
        box = (boxes[group] * weights[:, None]).sum(axis=0) / total
        points = (keypoints[group] * weights[:, None, None]).sum(axis=0) / total
        result.append(
            Detection(box.astype(np.float32), points.astype(np.float32), float(scores[top]))
        )
    return result


class FaceDetector:
    """Runs one BlazeFace model (``spec``) on whole images."""

    def __init__(
        self,
        model: InferenceModel,
        spec: DetectorSpec = SHORT_RANGE,
        *,
        min_score: float | None = None,
        iou_threshold: float | None = None,
    ) -> None:
        self._model = model
        self.spec = spec
        self.min_score = spec.min_score if min_score is None else min_score
        self.iou_threshold = spec.nms_iou if iou_threshold is None else iou_threshold
        self._size = size = spec.input_size
        self._anchors = spec.anchors()
        if self._anchors.shape[0] != spec.num_boxes:  # a wrong spec, not a wrong file
            raise ValueError(f"{spec.name}: {self._anchors.shape[0]} anchors != num_boxes")
        shapes = [t.shape for t in model.outputs]
        if len(shapes) != 2 or any(len(s) != 3 or s[1] != spec.num_boxes for s in shapes):
            raise ValueError(
                f"detector model {spec.file} has outputs {shapes}, expected "
                f"[1, {spec.num_boxes}, 16] and [1, {spec.num_boxes}, 1]"
            )
        # Outputs are told apart by shape: regressors [1,N,16], classificators [1,N,1]
        # (names differ between the models and their ONNX conversions).
        self._regressors = 0 if shapes[0][2] == NUM_COORDS else 1
        self._classificators = 1 - self._regressors
        # The raw logit a score of min_score corresponds to: thresholding logits avoids a
        # sigmoid over every box.
        self._min_logit = float(np.log(self.min_score / (1 - self.min_score)))
        # Reused buffers: fresh large arrays cost page faults every frame (not thread-safe:
        # the owning pipeline serialises calls).
        self._tensor = np.empty((1, size, size, 3), dtype=np.float32)
        self._square = {c: np.empty((size, size, c), dtype=np.uint8) for c in (3, 4)}

    def preprocess(
        self, image: npt.NDArray[np.uint8], tile: tuple[int, int, int] | None = None
    ) -> Letterbox:
        """Letterbox an RGB or RGBA image (or its square ``tile``: left, top, side px) into
        the input tensor."""
        height, width = image.shape[:2]
        if tile is None:
            letterbox = Letterbox.for_image(width, height)
        else:
            letterbox = Letterbox(width, height, tile[2], tile[0], tile[1])
        square = cv2.warpAffine(
            image,
            letterbox.matrix(self._size),
            (self._size, self._size),
            dst=self._square[image.shape[2]],
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0),
        )
        if square.shape[2] == 4:
            square = cv2.cvtColor(square, cv2.COLOR_RGBA2RGB, dst=self._square[3])
        np.multiply(square, np.float32(2 / 255), out=self._tensor[0], casting="unsafe")
        self._tensor -= np.float32(1)
        return letterbox

    def detect(
        self,
        image: npt.NDArray[np.uint8],
        max_faces: int = 1,
        tile: tuple[int, int, int] | None = None,
    ) -> list[Detection]:
        """Faces in an RGB or RGBA uint8 image (or only in its square ``tile``: left, top,
        side px), best score first, at most ``max_faces``; boxes and keypoints normalized
        to the whole image."""
        letterbox = self.preprocess(image, tile)
        outputs = self._model.run([self._tensor])
        regressors = outputs[self._regressors][0]
        logits = outputs[self._classificators][0, :, 0]
        return self.decode(regressors, logits, letterbox)[:max_faces]

    def decode(
        self, regressors: FloatArray, logits: FloatArray, letterbox: Letterbox
    ) -> list[Detection]:
        logits = np.clip(logits, -SCORE_CLIP, SCORE_CLIP)
        keep = np.flatnonzero(logits >= self._min_logit)
        if keep.size == 0:
            return []
        raw = regressors[keep] / np.float32(self._size)
        anchors = self._anchors[keep]
        centre = raw[:, 0:2] + anchors
        size = raw[:, 2:4]
        valid = np.all(size >= 0, axis=1) & np.all(np.isfinite(raw), axis=1)
        if not valid.all():
            keep, raw, anchors, centre, size = (
                keep[valid],
                raw[valid],
                anchors[valid],
                centre[valid],
                size[valid],
            )
            if keep.size == 0:
                return []
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        keypoints = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
        scores = (1 / (1 + np.exp(-logits[keep]))).astype(np.float32)
        detections = weighted_nms(boxes, keypoints, scores, self.iou_threshold)
        return [
            Detection(
                letterbox.to_image(d.box.reshape(2, 2)).reshape(4),
                letterbox.to_image(d.keypoints),
                d.score,
            )
            for d in detections
        ]
