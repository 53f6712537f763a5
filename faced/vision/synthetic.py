"""Synthetic moving-face clips: a photograph drifting, scaling and turning in a video frame.

Owns drawing the frames of a moving-face clip from one photograph (pure, deterministic).
Does not own the photographs (tests.data, faced.devices.demo_photo) or pacing (the demo
camera).
Why: benchmarks (``faced bench pipeline``, ``bench/pipeline_vs_mediapipe.py``), the parity
tests and the demo camera need a face that moves like a person in front of a camera without
a camera or a recorded video. A clip is a pure function of the photograph and the frame
index: the same arguments give the same frames on every machine, so two programs fed the
same clip see the same pixels.

Two edits of a rendered frame imitate what a photograph cannot do: ``open_mouth`` (the
jaw dropped, placed by the pipeline's own landmarks of that frame) and ``turn_head`` (the
face wrapped round a vertical cylinder and turned, which the pipeline reads as yaw).

The motion is smooth and periodic (sums of slow sines, every period a divisor of
``Motion.period``): a drift of a few pixels per frame, a gentle zoom and an in-plane tilt of
a few degrees, which is what a tracker sees from a person sitting in front of a screen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

DEFAULT_SIZE: Final = (640, 480)
DEFAULT_FPS: Final = 30.0
BACKGROUND_RGB: Final = (48, 52, 60)
MOUTH_RGB: Final = (60, 25, 30)
"""The inside of an opened mouth (``open_mouth``): dark red."""


@dataclass(frozen=True, slots=True)
class Motion:
    """How the photograph moves; amplitudes are peak values, the period is in frames."""

    fill: float = 0.8
    """Share of the frame the photograph's longer side takes (relative to its fit)."""
    drift: tuple[float, float] = (0.08, 0.05)
    """Peak horizontal, vertical drift of the centre, as fractions of the frame size."""
    zoom: float = 0.1
    """Peak relative change of scale (0.1 = ±10 %)."""
    tilt_degrees: float = 8.0
    """Peak in-plane rotation."""
    period: int = 240
    """Frames after which the motion repeats (8 s at 30 frames/s)."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.fill <= 2.0:
            raise ValueError(f"fill must be within 0.05..2, got {self.fill}")
        if not 0.0 <= self.zoom < 0.9:
            raise ValueError(f"zoom must be within 0..0.9, got {self.zoom}")
        if self.period < 4:
            raise ValueError(f"period must be at least 4 frames, got {self.period}")


def frame_transform(
    index: int,
    photo_size: tuple[int, int],
    frame_size: tuple[int, int] = DEFAULT_SIZE,
    motion: Motion = Motion(),
) -> npt.NDArray[np.float64]:
    """The 2x3 affine matrix taking photograph pixels to frame pixels at frame ``index``."""
    photo_w, photo_h = photo_size
    frame_w, frame_h = frame_size
    phase = 2.0 * math.pi * index / motion.period
    # Different whole-number frequencies per axis: a Lissajous path, never a straight line,
    # yet the whole motion repeats exactly every period.
    dx = motion.drift[0] * frame_w * math.sin(phase)
    dy = motion.drift[1] * frame_h * math.sin(2.0 * phase + 0.5)
    scale = motion.fill * min(frame_w / photo_w, frame_h / photo_h)
    scale *= 1.0 + motion.zoom * math.sin(phase + 1.0)
    angle = motion.tilt_degrees * math.sin(3.0 * phase + 2.0)
    matrix = cast(
        npt.NDArray[np.float64],
        cv2.getRotationMatrix2D((photo_w / 2.0, photo_h / 2.0), angle, scale),
    )
    matrix[0, 2] += frame_w / 2.0 + dx - photo_w / 2.0
    matrix[1, 2] += frame_h / 2.0 + dy - photo_h / 2.0
    return matrix


def render_frame(
    photo: Image,
    index: int,
    frame_size: tuple[int, int] = DEFAULT_SIZE,
    motion: Motion = Motion(),
) -> Image:
    """Frame ``index`` of the clip made from ``photo`` (H x W x 3 uint8, any channel order;
    the frame has the same order)."""
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"photo must be an H x W x 3 uint8 array, got {photo.shape} {photo.dtype}")
    height, width = photo.shape[:2]
    matrix = frame_transform(index, (width, height), frame_size, motion)
    frame = cv2.warpAffine(
        photo,
        matrix,
        frame_size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=BACKGROUND_RGB,
    )
    return cast(Image, frame)


def open_mouth(frame: Image, landmarks: Sequence[Sequence[float]], gap_px: float) -> Image:
    """``frame`` with the mouth opened ``gap_px`` pixels: everything below the lips'
    meeting line moves down (fading out below the chin and towards the face's sides) and the
    gap is the mouth's dark inside. ``landmarks``: the 478 normalized points of the face in
    this very frame (MediaPipe's indices: 13/14 the inner lips, 61/291 the corners, 152 the
    chin, 234/454 the face's sides)."""
    height, width = frame.shape[:2]
    if gap_px <= 0:
        return frame

    def point(index: int) -> tuple[float, float]:
        return landmarks[index][0] * width, landmarks[index][1] * height

    lips = (point(13)[1] + point(14)[1]) / 2
    left, right = point(61)[0], point(291)[0]
    chin = point(152)[1]
    centre = (left + right) / 2
    half_face = max((point(454)[0] - point(234)[0]) / 2, 1.0)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # The jaw moves as a whole across the face, fading out towards the cheeks' edges.
    across = np.clip(2.0 - 1.5 * np.abs(xs - centre) / half_face, 0.0, 1.0)
    # Below the lips the shift grows to the full gap, holds to the chin, then fades over
    # the neck (which is squeezed instead of the frame's bottom moving).
    fade = max(0.6 * (chin - lips), 1.0)
    down = np.clip((ys - lips) / gap_px, 0.0, 1.0)
    down = np.where(ys > chin + gap_px, np.clip(1 - (ys - chin - gap_px) / fade, 0.0, 1.0), down)
    source_y = (ys - gap_px * across * down).astype(np.float32)
    opened = cv2.remap(frame, xs, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    axes = (round(0.42 * abs(right - left)), max(1, round(gap_px / 2)))
    cv2.ellipse(opened, (round(centre), round(lips + gap_px / 2)), axes, 0, 0, 360,
                MOUTH_RGB, -1, cv2.LINE_AA)  # fmt: skip
    return cast(Image, opened)


# MediaPipe's eye contours, image-left corner first: (corner, upper lid..., corner) and the
# lower lid between the same corners. The subject's right eye, then the left.
_EYE_CONTOURS: Final = (
    ((33, 246, 161, 160, 159, 158, 157, 173, 133), (33, 7, 163, 144, 145, 153, 154, 155, 133)),
    ((362, 398, 384, 385, 386, 387, 388, 466, 263), (362, 382, 381, 380, 374, 373, 390, 249, 263)),
)
LID_SKIN: Final = 0.5
"""Height of the skin above the upper lid that lowering the lid stretches, as a share of
the eye's width (about the distance to the brow's underside)."""


def lower_eyelids(frame: Image, landmarks: Sequence[Sequence[float]], closure: float) -> Image:
    """``frame`` with both upper lids lowered ``closure`` of the way to the lower lids (0
    unchanged, 1 shut), the eyeballs untouched: what a drowsy or half-closed eye looks like
    while the gaze stays where it was. In every column between an eye's corners, the skin
    from ``LID_SKIN`` eye widths above the upper lid down to the lid's edge is stretched
    down to the new edge, covering the top of the eye (the lid's lashes and crease move
    with it); below the new edge nothing moves. ``landmarks``: the 478 normalized points
    of the face in this very frame."""
    if not 0.0 <= closure <= 1.0:
        raise ValueError(f"closure must be within 0..1, got {closure}")
    if closure == 0.0:
        return frame
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    source_y = ys.copy()
    for upper_indices, lower_indices in _EYE_CONTOURS:
        upper = np.array([landmarks[i][:2] for i in upper_indices]) * (width, height)
        lower = np.array([landmarks[i][:2] for i in lower_indices]) * (width, height)
        left, right = upper[0, 0], upper[-1, 0]
        eye_width = right - left
        if eye_width < 2.0:
            continue
        columns = np.arange(max(0, math.floor(left)), min(width, math.ceil(right) + 1))
        lid = np.interp(columns, upper[:, 0], upper[:, 1])
        floor = np.interp(columns, lower[:, 0], lower[:, 1])
        edge = lid + closure * np.maximum(floor - lid, 0.0)
        top = lid - LID_SKIN * eye_width
        for column, lid_y, edge_y, top_y in zip(columns, lid, edge, top, strict=True):
            if edge_y - lid_y < 0.05:
                continue
            rows = np.arange(max(0, math.floor(top_y)), min(height, math.ceil(edge_y) + 1))
            # Rows top..edge show the skin top..lid: a linear stretch, continuous at both ends.
            stretch = (lid_y - top_y) / (edge_y - top_y)
            mapped = top_y + (rows - top_y) * stretch
            source_y[rows, column] = np.where(rows >= top_y, mapped, rows).astype(np.float32)
    lowered = cv2.remap(frame, xs, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cast(Image, lowered)


def turn_head(frame: Image, degrees: float, centre_x: float, radius: float) -> Image:
    """``frame`` with the columns within ``radius`` of ``centre_x`` wrapped round a vertical
    cylinder of that radius and turned ``degrees`` (positive: the face's features move to
    the image's right). Whatever turns past the cylinder's edge is not drawn (the columns
    outside keep their pixels)."""
    height, width = frame.shape[:2]
    xs = np.arange(width, dtype=np.float64)
    across = np.clip((xs - centre_x) / radius, -1.0, 1.0)
    angle = np.arcsin(across) - math.radians(degrees)
    visible = (np.abs(xs - centre_x) < radius) & (np.abs(angle) <= math.pi / 2)
    source_x = np.where(
        visible, centre_x + radius * np.sin(np.clip(angle, -math.pi / 2, math.pi / 2)), xs
    )
    map_x = np.broadcast_to(source_x.astype(np.float32), (height, width))
    map_y = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width))
    turned = cv2.remap(
        frame, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    return cast(Image, turned)


def synthetic_frames(
    photo: Image,
    frames: int,
    *,
    frame_size: tuple[int, int] = DEFAULT_SIZE,
    motion: Motion = Motion(),
) -> Iterator[Image]:
    """The clip's ``frames`` frames, one array at a time (RGB if ``photo`` is RGB)."""
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    for index in range(frames):
        yield render_frame(photo, index, frame_size, motion)


def load_photo(path: str | Path) -> Image:
    """A photograph file as RGB; ValueError naming the file if it cannot be read."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read an image from {path}")
    return cast(Image, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def write_clip(
    photo: Image,
    path: str | Path,
    frames: int,
    *,
    frame_size: tuple[int, int] = DEFAULT_SIZE,
    fps: float = DEFAULT_FPS,
    motion: Motion = Motion(),
    quality: int = 90,
) -> Path:
    """Write the clip from RGB ``photo`` as an MJPEG .avi (every frame a key frame, cheap
    to decode, as from a USB camera) and return its path. Written under a temporary name
    and renamed, so a reader never sees half a clip."""
    target = Path(path)
    partial = target.with_name(target.stem + ".partial" + target.suffix)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter.fourcc(*"MJPG"), fps, frame_size)
    if not writer.isOpened():
        raise OSError(f"cannot open {partial} for writing an MJPEG clip")
    try:
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(quality))
        for frame in synthetic_frames(photo, frames, frame_size=frame_size, motion=motion):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    partial.replace(target)
    return target


def write_face_then_nobody(
    path: str | Path, face: Image, face_frames: int, nobody_frames: int = 120
) -> Path:
    """A 30 fps MJPEG clip: ``face_frames`` of one still RGB frame showing a face, then
    ``nobody_frames`` of the empty background; a ``file:`` camera loops it, so the person
    keeps arriving and leaving (the perception bench, the presence and person tests)."""
    target = Path(path)
    bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    empty = np.empty_like(bgr)
    empty[:] = BACKGROUND_RGB[::-1]
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, DEFAULT_SIZE)
    try:
        for index in range(face_frames + nobody_frames):
            writer.write(bgr if index < face_frames else empty)
    finally:
        writer.release()
    return target


def cached_clip(
    photo_path: str | Path,
    cache_dir: str | Path,
    frames: int,
    *,
    frame_size: tuple[int, int] = DEFAULT_SIZE,
    fps: float = DEFAULT_FPS,
) -> Path:
    """The clip for ``photo_path`` in ``cache_dir``, written on first use. The file name
    records every parameter, so a changed request never reuses a stale clip."""
    source = Path(photo_path)
    width, height = frame_size
    name = f"{source.stem}-{width}x{height}-{frames}f-{fps:g}fps.avi"
    target = Path(cache_dir) / name
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_clip(load_photo(source), target, frames, frame_size=frame_size, fps=fps)
