"""Head pose (Procrustes on the canonical face), eyes, One-Euro smoothing, ROI geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faced.vision.eyes import LEFT_EYE, RIGHT_EYE, eye_states
from faced.vision.geometry import (
    GeometryPipeline,
    MetadataError,
    WeightedProcrustes,
    euler_degrees,
    parse_metadata,
    solve_weighted_orthogonal,
)
from faced.vision.landmarks import Roi, project, roi_from_landmarks
from faced.vision.models import ModelStore
from faced.vision.smoothing import LandmarkSmoother, OneEuroFilter


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Ry(yaw) Rx(-pitch) Rz(roll), degrees: the convention euler_degrees inverts."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(-p), -math.sin(-p)], [0, math.sin(-p), math.cos(-p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


@pytest.fixture(scope="module")
def metadata() -> bytes:
    return ModelStore().read("geometry_pipeline_metadata_landmarks.binarypb")


def test_metadata_parses_canonical_mesh_and_weights(metadata: bytes) -> None:
    canonical = parse_metadata(metadata)
    assert canonical.vertices.shape == (3, 468)
    nonzero = np.flatnonzero(canonical.weights)
    assert len(nonzero) == 33
    assert canonical.weights[129] == pytest.approx(0.1206252, abs=1e-6)
    assert canonical.weights[4] == pytest.approx(0.0709099, abs=1e-6)
    # The canonical face is symmetric: 33 and 263 (eye corners) mirror in x.
    assert canonical.vertices[0, 33] == pytest.approx(-canonical.vertices[0, 263], abs=1e-3)
    with pytest.raises(MetadataError):
        parse_metadata(b"\x0a\x05hello")


def test_procrustes_recovers_a_known_similarity_transform(metadata: bytes) -> None:
    canonical = parse_metadata(metadata)
    indices = np.flatnonzero(canonical.weights)
    source = canonical.vertices[:, indices]
    sqrt_w = np.sqrt(canonical.weights[indices])
    rotation = _rotation(25, -10, 7)
    target = 1.7 * rotation @ source + np.array([[3.0], [-2.0], [-40.0]])
    transform = solve_weighted_orthogonal(source, target, sqrt_w)
    assert np.allclose(transform[:3, :3], 1.7 * rotation, atol=1e-9)
    assert np.allclose(transform[:3, 3], [3, -2, -40], atol=1e-9)
    assert euler_degrees(transform[:3, :3]) == pytest.approx((25, -10, 7), abs=1e-6)


def test_head_pose_of_a_synthetic_projected_face(metadata: bytes) -> None:
    # Put the canonical face 50 cm in front of a 63-degree camera, turned and tilted,
    # project it to normalized screen coordinates, and ask the pipeline for the pose.
    canonical = parse_metadata(metadata)
    width, height = 640, 480
    rotation = _rotation(20, 10, -5)
    camera = rotation @ canonical.vertices + np.array([[0.0], [0.0], [-50.0]])
    h = 2 * math.tan(math.radians(63) / 2)
    w = h * width / height
    depth = -camera[2]
    screen = np.empty((468, 3))
    screen[:, 0] = (camera[0] / depth + w / 2) / w
    screen[:, 1] = 1 - (camera[1] / depth + h / 2) / h
    screen[:, 2] = -(camera[2] + 50) / depth / w  # relative depth, scaled like x
    pose = GeometryPipeline(canonical).solve(screen, width, height)
    assert pose.yaw == pytest.approx(20, abs=1.5)
    assert pose.pitch == pytest.approx(10, abs=1.5)
    assert pose.roll == pytest.approx(-5, abs=1.5)


def _eye_landmarks(iris_offset: tuple[float, float], lid_gap: float = 10.0) -> np.ndarray:
    """A frontal face's eyes in a 400x400 image, iris moved by (dx, dy) pixels, dy > 0 up."""
    points = np.zeros((478, 3))
    for eye, centre_x in ((RIGHT_EYE, 130.0), (LEFT_EYE, 270.0)):
        points[eye.image_left_corner, :2] = (centre_x - 30, 200)
        points[eye.image_right_corner, :2] = (centre_x + 30, 200)
        for i in eye.upper_lid:
            points[i, :2] = (centre_x, 200 - lid_gap / 2)
        for i in eye.lower_lid:
            points[i, :2] = (centre_x, 200 + lid_gap / 2)
        points[eye.iris_centre, :2] = (centre_x + iris_offset[0], 200 - iris_offset[1])
    points[:, :2] /= 400
    return points


def test_gaze_signs_follow_the_image_axes_for_both_eyes() -> None:
    left, right = eye_states(_eye_landmarks((0, 0)), 400, 400)
    assert left.gaze == pytest.approx((0, 0)) and right.gaze == pytest.approx((0, 0))
    left, right = eye_states(_eye_landmarks((6, 0)), 400, 400)  # iris toward image right
    assert left.gaze[0] > 0.3 and right.gaze[0] > 0.3
    left, right = eye_states(_eye_landmarks((-6, 0)), 400, 400)
    assert left.gaze[0] < -0.3 and right.gaze[0] < -0.3
    left, right = eye_states(_eye_landmarks((0, 4)), 400, 400)  # iris up
    assert left.gaze[1] > 0.3 and right.gaze[1] > 0.3
    left, _ = eye_states(_eye_landmarks((100, -100)), 400, 400)
    assert left.gaze == (1.0, -1.0)  # clipped


def test_gaze_is_roll_invariant() -> None:
    points = _eye_landmarks((6, 3))
    angle = math.radians(30)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rolled = points.copy()
    rolled[:, :2] = (points[:, :2] - 0.5) @ rot.T + 0.5
    for a, b in zip(eye_states(points, 400, 400), eye_states(rolled, 400, 400), strict=True):
        assert a.gaze == pytest.approx(b.gaze, abs=1e-9)


def test_openness_tracks_the_lid_gap() -> None:
    wide, _ = eye_states(_eye_landmarks((0, 0), lid_gap=20), 400, 400)
    half, _ = eye_states(_eye_landmarks((0, 0), lid_gap=10), 400, 400)
    shut, _ = eye_states(_eye_landmarks((0, 0), lid_gap=1), 400, 400)
    assert wide.openness == 1.0
    assert 0.2 < half.openness < 0.9
    assert shut.openness == 0.0


def test_one_euro_starts_at_the_input_and_converges_to_a_constant() -> None:
    filt = OneEuroFilter()
    first = filt.apply(np.array([10.0, -4.0]), 33_000_000)
    assert np.allclose(first, [10, -4])
    value = first
    for frame in range(2, 200):
        value = filt.apply(np.array([20.0, -4.0]), frame * 33_000_000)
    assert np.allclose(value, [20, -4], atol=0.05)


def test_one_euro_lags_on_slow_motion_and_follows_fast_motion() -> None:
    # The beta term: a fast-moving value gets a higher cutoff, so less lag.
    def lag(speed: float) -> float:
        filt = OneEuroFilter(beta=80.0)
        out = np.zeros(1)
        for frame in range(1, 30):
            out = filt.apply(np.array([speed * frame]), frame * 33_333_333, value_scale=0.01)
        return float(speed * 29 - out[0]) / speed

    assert lag(10.0) < lag(0.1)


def test_one_euro_ignores_non_advancing_timestamps() -> None:
    filt = OneEuroFilter()
    filt.apply(np.array([1.0]), 1_000_000)
    assert filt.apply(np.array([5.0]), 1_000_000)[0] == 5.0  # passed through, unfiltered
    assert filt.apply(np.array([5.0]), 2_000_000)[0] < 5.0  # filtered again afterwards


def test_landmark_smoother_reduces_jitter() -> None:
    rng = np.random.default_rng(0)
    base = rng.random((478, 3)) * 0.3 + 0.3
    smoother = LandmarkSmoother()
    raw_err, smooth_err = [], []
    for frame in range(1, 60):
        noisy = base + rng.normal(0, 0.0003, base.shape)  # ~0.2 px of jitter
        out = smoother.apply(noisy, 640, 480, frame * 33_333_333)
        if frame > 10:
            raw_err.append(np.abs(noisy - base).mean())
            smooth_err.append(np.abs(out - base).mean())
    assert np.mean(smooth_err) < 0.5 * np.mean(raw_err)


def test_projection_inverts_the_crop() -> None:
    roi = Roi(cx=300.0, cy=200.0, width=180.0, height=120.0, rotation=0.4)
    crop_points = np.array([[10.0, 20.0, 5.0], [128.0, 128.0, 0.0], [250.0, 3.0, -7.0]])
    image_points = project(crop_points.astype(np.float32), roi, 640, 480)
    # The crop matrix maps the projected pixels back onto the crop coordinates.
    pixels = image_points[:, :2] * [640, 480]
    back = pixels @ roi.crop_matrix()[:, :2].T + roi.crop_matrix()[:, 2]
    assert np.allclose(back, crop_points[:, :2], atol=1e-3)
    assert np.allclose(image_points[1, :2], [300 / 640, 200 / 480])


def test_tracking_roi_is_square_levelled_and_scaled() -> None:
    points = np.zeros((478, 3), dtype=np.float32)
    points[:, 0] = np.linspace(0.25, 0.75, 478)  # 320 px wide in a 640 frame
    points[:, 1] = np.linspace(0.25, 0.5, 478)  # 120 px tall in a 480 frame
    points[33, :2] = (0.4, 0.3)
    points[263, :2] = (0.6, 0.3)
    roi = roi_from_landmarks(points, 640, 480)
    assert roi.width == roi.height == pytest.approx(320 * 1.5)
    assert roi.rotation == pytest.approx(0.0)
    assert (roi.cx, roi.cy) == pytest.approx((320.0, 0.375 * 480))


def test_scale_alone_matches_the_full_solve(metadata: bytes) -> None:
    canonical = parse_metadata(metadata)
    indices = np.flatnonzero(canonical.weights)
    solver = WeightedProcrustes(canonical.vertices[:, indices], np.sqrt(canonical.weights[indices]))
    rng = np.random.default_rng(5)
    for _ in range(20):
        target = 0.8 * _rotation(*rng.uniform(-40, 40, 3)) @ canonical.vertices[:, indices]
        target += rng.normal(0, 0.3, target.shape)  # noisy: not an exact similarity
        full = solver.solve(target)
        assert solver.scale(target) == pytest.approx(np.linalg.norm(full[:3, 0]), rel=1e-6)
    # A mirrored target: the best orthogonal map is a reflection, which the solver refuses.
    mirrored = canonical.vertices[:, indices] * np.array([[-1.0], [1.0], [1.0]])
    transform = solver.solve(mirrored)
    assert np.linalg.det(transform[:3, :3]) > 0
    assert solver.scale(mirrored) == pytest.approx(np.linalg.norm(transform[:3, 0]), rel=1e-6)
