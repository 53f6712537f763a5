"""Head pose: MediaPipe's face geometry pipeline (weighted Procrustes on a canonical face).

Owns the head pose (yaw, pitch, roll and the 4x4 matrix) from landmarks (pure numpy).
Does not own the landmarks, or reading the model files (faced.vision.models).
Why: MediaPipe's pose without MediaPipe's C++ graph.

The canonical face and the solver's landmark weights
come from ``geometry_pipeline_metadata_landmarks.binarypb`` (a GeometryPipelineMetadata
protobuf, read here with a tiny wire-format reader). Screen landmarks are lifted into a
metric 3-D space through a perspective camera (vertical FOV 63 deg, near 1) in two scale
iterations, then a weighted orthogonal Procrustes fit with uniform scale gives the 4x4
transform canonical face -> camera space. See ../shared/docs/face-pipeline-facts.md §6.

Only the landmarks with a non-zero weight influence the fit, so the solver works on those
(33) alone; the depth offset still averages all 468 mesh points, as MediaPipe's does.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

VERTICAL_FOV_DEG: Final = 63.0
NEAR: Final = 1.0
MESH_POINTS: Final = 468
_VERTEX_SIZE: Final = 5  # x, y, z, u, v


class MetadataError(ValueError):
    """The geometry metadata file is not what the pipeline expects."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise MetadataError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """Top-level (field number, wire type, value) of a protobuf message."""
    out: list[tuple[int, int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise MetadataError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _floats(fields: list[tuple[int, int, int | bytes]], number: int) -> list[float]:
    values: list[float] = []
    for field, wire, value in fields:
        if field != number or not isinstance(value, bytes):
            continue
        if wire == 5:
            values.append(struct.unpack("<f", value)[0])
        elif wire == 2:  # packed
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


@dataclass(frozen=True, slots=True)
class CanonicalFace:
    vertices: F64
    """(3, 468) canonical mesh positions (cm)."""
    weights: F64
    """(468,) Procrustes weights, zero for points the fit ignores."""


def parse_metadata(data: bytes) -> CanonicalFace:
    """Read GeometryPipelineMetadata: field 1 canonical_mesh (Mesh3d: field 3 vertex_buffer),
    field 2 procrustes_landmark_basis (WeightedLandmarkRef: 1 landmark_id, 2 weight)."""
    try:
        top = _fields(data)
        mesh = next(v for n, w, v in top if n == 1 and w == 2)
        assert isinstance(mesh, bytes)
        vertex_buffer = _floats(_fields(mesh), 3)
        weights = np.zeros(MESH_POINTS, dtype=np.float64)
        for number, wire, value in top:
            if number != 2 or wire != 2 or not isinstance(value, bytes):
                continue
            ref = _fields(value)
            landmark = next((v for n, _, v in ref if n == 1), 0)
            weight = _floats(ref, 2)
            if not isinstance(landmark, int) or not 0 <= landmark < MESH_POINTS:
                raise MetadataError(f"landmark id {landmark!r} out of range")
            weights[landmark] = weight[0] if weight else 0.0
    except (StopIteration, struct.error) as exc:
        raise MetadataError(f"not a geometry pipeline metadata file: {exc}") from None
    if len(vertex_buffer) != MESH_POINTS * _VERTEX_SIZE:
        raise MetadataError(
            f"canonical mesh has {len(vertex_buffer)} floats, expected {MESH_POINTS * _VERTEX_SIZE}"
        )
    if not weights.any():
        raise MetadataError("no Procrustes landmark weights")
    vertices = np.array(vertex_buffer, dtype=np.float64).reshape(MESH_POINTS, _VERTEX_SIZE)
    return CanonicalFace(np.ascontiguousarray(vertices[:, :3].T), weights)


class WeightedProcrustes:
    """Weighted orthogonal Procrustes with uniform scale against a fixed source shape
    (MediaPipe's solver); everything that depends only on the source is computed once."""

    def __init__(self, source: F64, sqrt_weights: F64) -> None:
        self._sqrt_weights = sqrt_weights
        self._weights = sqrt_weights * sqrt_weights
        self._total_weight = float(self._weights.sum())
        weighted_source = source * sqrt_weights
        self._source_centre = (source * self._weights).sum(axis=1) / self._total_weight
        self._centred_weighted_source_t = np.ascontiguousarray(
            (weighted_source - np.outer(self._source_centre, sqrt_weights)).T
        )
        self._denominator = float((self._centred_weighted_source_t.T * weighted_source).sum())

    def rotation_and_scale(self, target: F64) -> tuple[F64, float]:
        design = (target * self._sqrt_weights) @ self._centred_weighted_source_t
        u, _, vt = np.linalg.svd(design)
        rotation = u @ vt
        if _det3(rotation) < 0:  # a reflection: flip the weakest axis
            u[:, 2] *= -1
            rotation = u @ vt
        # sum((R C) * T_w) == sum(R * design): the scale without another 3 x n product.
        return rotation, float((rotation * design).sum()) / self._denominator

    def scale(self, target: F64) -> float:
        """The optimal scale alone (what MediaPipe's scale estimates use), without the
        rotation: sum(R * design) is the sum of the design's singular values, the smallest
        negated when the best orthogonal map would be a reflection."""
        design = (target * self._sqrt_weights) @ self._centred_weighted_source_t
        singular = _singular_values3(design)
        if _det3(design) < 0:
            singular[2] = -singular[2]
        return sum(singular) / self._denominator

    def solve(self, target: F64) -> F64:
        """4x4 [s R | t] minimising sum w_i |s R src_i + t - dst_i|^2 (points as columns)."""
        rotation, scale = self.rotation_and_scale(target)
        target_centre = (target @ self._weights) / self._total_weight
        transform = np.zeros((4, 4))
        np.multiply(rotation, scale, out=transform[:3, :3])
        transform[:3, 3] = target_centre - scale * (rotation @ self._source_centre)
        transform[3, 3] = 1.0
        return transform


def _singular_values3(matrix: F64) -> list[float]:
    """Singular values of a 3 x 3 matrix, largest first: square roots of the eigenvalues
    of M^T M by the closed-form trigonometric solution (plain floats: a few microseconds,
    where np.linalg.svd's wrapper alone costs tens on a cold cache)."""
    (a, b, c), (d, e, f), (g, h, i) = matrix.tolist()
    # A = M^T M, symmetric positive semi-definite.
    a00, a11, a22 = a * a + d * d + g * g, b * b + e * e + h * h, c * c + f * f + i * i
    a01, a02, a12 = a * b + d * e + g * h, a * c + d * f + g * i, b * c + e * f + h * i
    off = a01 * a01 + a02 * a02 + a12 * a12
    q = (a00 + a11 + a22) / 3
    p2 = (a00 - q) ** 2 + (a11 - q) ** 2 + (a22 - q) ** 2 + 2 * off
    if p2 <= 1e-300:
        eigen = [q, q, q]
    else:
        p = math.sqrt(p2 / 6)
        b00, b11, b22 = (a00 - q) / p, (a11 - q) / p, (a22 - q) / p
        b01, b02, b12 = a01 / p, a02 / p, a12 / p
        det_b = (
            b00 * (b11 * b22 - b12 * b12)
            - b01 * (b01 * b22 - b12 * b02)
            + b02 * (b01 * b12 - b11 * b02)
        )
        phi = math.acos(max(-1.0, min(1.0, det_b / 2))) / 3
        largest = q + 2 * p * math.cos(phi)
        smallest = q + 2 * p * math.cos(phi + 2 * math.pi / 3)
        eigen = [largest, 3 * q - largest - smallest, smallest]
    return [math.sqrt(max(v, 0.0)) for v in eigen]


def _det3(matrix: F64) -> float:
    # Plain floats: np.linalg.det's wrapper costs more than the arithmetic for 3 x 3.
    (a, b, c), (d, e, f), (g, h, i) = matrix.tolist()
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def solve_weighted_orthogonal(source: F64, target: F64, sqrt_weights: F64) -> F64:
    """One-off solve; see WeightedProcrustes."""
    return WeightedProcrustes(source, sqrt_weights).solve(target)


@dataclass(frozen=True, slots=True)
class HeadPose:
    matrix: F64
    """4x4 facial transformation matrix (canonical face -> camera space, cm)."""
    yaw: float
    pitch: float
    roll: float


def euler_degrees(rotation: F64) -> tuple[float, float, float]:
    """(yaw, pitch, roll) with R = Ry(yaw) Rx(-pitch) Rz(roll) in the camera frame (x right,
    y up, z toward the viewer): yaw > 0 turns the face toward the image's right, pitch > 0
    tilts it up, roll > 0 rotates it counter-clockwise as seen in the image."""
    # Plain floats: nine numbers, where numpy's per-call overhead is the whole cost.
    (_, _, r02), (r10, r11, r12), (_, _, r22) = rotation.tolist()
    r00, r20 = rotation[0, 0], rotation[2, 0]
    norm = math.sqrt(r00 * r00 + r10 * r10 + r20 * r20)
    yaw = math.atan2(r02 / norm, r22 / norm)
    pitch = math.asin(max(-1.0, min(1.0, r12 / norm)))
    roll = math.atan2(r10 / norm, r11 / norm)
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


class GeometryPipeline:
    """Head pose from normalized landmarks, for images of a given aspect ratio."""

    def __init__(self, canonical: CanonicalFace, vertical_fov_deg: float = VERTICAL_FOV_DEG):
        self._indices = np.flatnonzero(canonical.weights)
        self._solver = WeightedProcrustes(
            np.ascontiguousarray(canonical.vertices[:, self._indices]),
            np.sqrt(canonical.weights[self._indices]),
        )
        self._height_at_near = 2 * NEAR * math.tan(math.radians(vertical_fov_deg) / 2)
        self._flip_z = np.array([[1.0], [1.0], [-1.0]])
        self._frame: tuple[int, int, float, F64, F64] | None = None
        """The last image size, its near-plane width and the screen projection's scale
        and offset (images of one stream share a size: made once, not per frame)."""

    @classmethod
    def from_metadata(cls, data: bytes) -> GeometryPipeline:
        return cls(parse_metadata(data))

    def _estimate_scale(self, points: F64) -> float:
        return self._solver.scale(points)

    def _to_metric(self, screen: F64, depth_offset: float, scale: float) -> F64:
        """Rescale depth, unproject x and y through the frustum, flip z (right-handed)."""
        depth = (screen[2] - depth_offset + NEAR) / scale
        metric = screen * (depth / NEAR)
        metric[2] = -depth
        return metric

    def solve(self, landmarks: npt.NDArray[np.floating], width: int, height: int) -> HeadPose:
        """Pose of normalized landmarks (at least 468 x 3) in a width x height image."""
        frame = self._frame
        if frame is None or frame[:2] != (width, height):
            h = self._height_at_near
            w = h * width / height
            scale = np.array([w, -h, w])
            offset = np.array([-w / 2, h / 2, 0.0])
            frame = self._frame = (width, height, w, scale, offset)
        w, scale, offset = frame[2:]
        # Project to the near plane (origin top-left -> centre, y up); z scales like x.
        # (np.add.reduce / n is ndarray.mean's arithmetic without its Python wrapper.)
        depth_offset = float(np.add.reduce(landmarks[:MESH_POINTS, 2]) / MESH_POINTS) * w
        # x * w - w/2, (1 - y) * h - h/2, z * w; points as columns for the solver.
        screen: F64 = (landmarks[self._indices].astype(np.float64) * scale + offset).T
        scale1 = self._estimate_scale(screen * self._flip_z)
        scale2 = self._estimate_scale(self._to_metric(screen, depth_offset, scale1))
        metric = self._to_metric(screen, depth_offset, scale1 * scale2)
        matrix = self._solver.solve(metric)
        yaw, pitch, roll = euler_degrees(matrix[:3, :3])
        return HeadPose(matrix, yaw, pitch, roll)
