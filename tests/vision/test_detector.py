"""BlazeFace detector: anchors, letterbox geometry, weighted NMS, the real model."""

from __future__ import annotations

import numpy as np
import pytest

from faced.vision.detector import FaceDetector, Letterbox, iou, ssd_anchors, weighted_nms
from faced.vision.models import ModelStore
from faced.vision.runtime import load_model


def test_anchors_count_and_order() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2)
    # Stride 8: 16x16 cells, 2 anchors each, row-major, anchors of one cell adjacent.
    assert np.allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(anchors[1], anchors[0])
    assert np.allclose(anchors[2], [1.5 / 16, 0.5 / 16])  # next column, same row
    assert np.allclose(anchors[32], [0.5 / 16, 1.5 / 16])  # next row
    # Stride 16 (three layers merged): 8x8 cells, 6 anchors each, starting at 512.
    assert np.allclose(anchors[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(anchors[518], [1.5 / 8, 0.5 / 8])
    assert np.allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


@pytest.mark.parametrize(("width", "height"), [(640, 480), (480, 640), (300, 300), (1, 999)])
def test_letterbox_round_trip_and_matrix(width: int, height: int) -> None:
    letterbox = Letterbox.for_image(width, height)
    rng = np.random.default_rng(1)
    points = rng.random((20, 2)).astype(np.float64)
    assert np.allclose(letterbox.to_image(letterbox.to_tensor(points)), points, atol=1e-9)
    # The image's own corners land where the warp matrix puts them in the 128 tensor.
    corners = np.array([[0, 0], [width, height]], dtype=np.float64)
    in_tensor = corners @ letterbox.matrix()[:, :2].T + letterbox.matrix()[:, 2]
    normalized = letterbox.to_tensor(corners / [width, height])
    assert np.allclose(in_tensor / 128, normalized)
    # The long side fills the tensor exactly; the short side is centred.
    assert np.isclose(max(normalized[1] - normalized[0]), 1.0)
    assert np.allclose((normalized[0] + normalized[1]) / 2, 0.5)


def test_iou() -> None:
    box = np.array([0, 0, 1, 1], dtype=np.float32)
    others = np.array([[0, 0, 1, 1], [0.5, 0, 1.5, 1], [2, 2, 3, 3]], dtype=np.float32)
    assert np.allclose(iou(box, others), [1.0, 1 / 3, 0.0])


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces() -> None:
    boxes = np.array(
        [
            [0.10, 0.10, 0.30, 0.30],
            [0.12, 0.10, 0.32, 0.30],  # IoU with the first ~0.82: merged
            [0.60, 0.60, 0.80, 0.80],  # far away: its own face
        ],
        dtype=np.float32,
    )
    keypoints = np.zeros((3, 6, 2), dtype=np.float32)
    keypoints[:, 0, 0] = [0.2, 0.3, 0.7]
    scores = np.array([0.6, 0.9, 0.7], dtype=np.float32)
    faces = weighted_nms(boxes, keypoints, scores, 0.5)
    assert len(faces) == 2
    # Best first; the merged face keeps the best score and averages by score.
    assert faces[0].score == pytest.approx(0.9)
    expected_xmin = (0.10 * 0.6 + 0.12 * 0.9) / 1.5
    assert faces[0].box[0] == pytest.approx(expected_xmin)
    assert faces[0].keypoints[0, 0] == pytest.approx((0.2 * 0.6 + 0.3 * 0.9) / 1.5)
    assert faces[1].score == pytest.approx(0.7)
    assert np.allclose(faces[1].box, boxes[2])


def test_weighted_nms_threshold_is_strict() -> None:
    # IoU exactly 1/3: with threshold 1/3 the boxes are not merged (MediaPipe uses ">").
    boxes = np.array([[0, 0, 1, 1], [0.5, 0, 1.5, 1]], dtype=np.float32)
    keypoints = np.zeros((2, 6, 2), dtype=np.float32)
    scores = np.array([0.9, 0.8], dtype=np.float32)
    assert len(weighted_nms(boxes, keypoints, scores, float(iou(boxes[0], boxes[1:])[0]))) == 2


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    store = ModelStore()
    return FaceDetector(load_model(store.read("face_detector.tflite")))


def test_real_model_finds_nothing_in_a_flat_image(detector: FaceDetector) -> None:
    image = np.full((480, 640, 3), 128, dtype=np.uint8)
    assert detector.detect(image, max_faces=4) == []


def test_decode_projects_an_anchor_back_through_the_letterbox(detector: FaceDetector) -> None:
    # One confident box exactly on anchor 600 (stride 16) in a 640x480 frame: with zero
    # regression its centre is the anchor, projected from the padded square to the image.
    regressors = np.zeros((896, 16), dtype=np.float32)
    regressors[600, 2:4] = 32  # 0.25 of the tensor wide and high
    logits = np.full(896, -50, dtype=np.float32)
    logits[600] = 1000  # clipped to 100, still a certain face
    letterbox = Letterbox.for_image(640, 480)
    faces = detector.decode(regressors, logits, letterbox)
    assert len(faces) == 1
    anchor = ssd_anchors()[600]
    centre = (faces[0].box[:2] + faces[0].box[2:]) / 2
    assert np.allclose(centre, letterbox.to_image(anchor[None])[0], atol=1e-6)
    assert faces[0].box[2] - faces[0].box[0] == pytest.approx(0.25 * 640 / 640)
    assert faces[0].box[3] - faces[0].box[1] == pytest.approx(0.25 * 640 / 480)
    assert faces[0].score == pytest.approx(1.0)
