"""The synthetic moving-face clip: deterministic, smooth, periodic, readable as a video."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.vision.pipeline import FacePipeline
from faced.vision.synthetic import (
    BACKGROUND_RGB,
    Motion,
    cached_clip,
    frame_transform,
    load_photo,
    lower_eyelids,
    render_frame,
    synthetic_frames,
    write_clip,
)
from tests.data import load_rgb, path


def test_frames_are_deterministic_and_move_smoothly() -> None:
    photo = load_rgb("lenna.png")
    first = list(synthetic_frames(photo, 12))
    again = list(synthetic_frames(photo, 12))
    assert all(a.shape == (480, 640, 3) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    # Every frame differs from the previous one, but only a little (smooth motion).
    steps = [np.abs(b.astype(int) - a.astype(int)).mean() for a, b in itertools.pairwise(first)]
    assert all(0 < step < 20 for step in steps), steps
    # The photograph's centre moves by a few pixels per frame, never jumps.
    centres = [frame_transform(i, (512, 512)) @ np.array([256.0, 256.0, 1.0]) for i in range(240)]
    jumps = [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(centres)]
    assert 0.5 < max(jumps) < 6.0
    # Around the photograph lies the plain background.
    assert tuple(first[0][0, 0]) == BACKGROUND_RGB


def test_motion_repeats_every_period() -> None:
    photo = load_rgb("takeo.ppm")
    motion = Motion(period=40)
    assert np.array_equal(
        render_frame(photo, 3, motion=motion), render_frame(photo, 43, motion=motion)
    )
    assert not np.array_equal(
        render_frame(photo, 3, motion=motion), render_frame(photo, 13, motion=motion)
    )


def test_clip_file_holds_every_frame(tmp_path: Path) -> None:
    photo = load_rgb("takeo.ppm")
    clip = write_clip(photo, tmp_path / "takeo.avi", 15, frame_size=(320, 240))
    capture = cv2.VideoCapture(str(clip))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(decoded) == 15
    expected = list(synthetic_frames(photo, 15, frame_size=(320, 240)))
    # MJPEG is lossy, but each decoded frame is close to the frame it encodes.
    for got, want in zip(decoded, expected, strict=True):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 4.0
    assert not list(tmp_path.glob("*.partial*"))


def test_cached_clip_is_written_once(tmp_path: Path) -> None:
    clip = cached_clip(path("takeo.ppm"), tmp_path, 5, frame_size=(160, 120))
    written = clip.stat().st_mtime_ns
    assert cached_clip(path("takeo.ppm"), tmp_path, 5, frame_size=(160, 120)) == clip
    assert clip.stat().st_mtime_ns == written
    assert cached_clip(path("takeo.ppm"), tmp_path, 6, frame_size=(160, 120)) != clip


def test_bad_input_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        render_frame(np.zeros((10, 10), np.uint8), 0)
    with pytest.raises(ValueError, match="frames must be"):
        list(synthetic_frames(load_rgb("takeo.ppm"), -1))
    with pytest.raises(ValueError, match="period"):
        Motion(period=1)
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="cannot read an image"):
        load_photo(not_an_image)


def test_lowered_lids_cover_the_top_of_the_eye_and_nothing_else() -> None:
    photo = load_rgb("lenna.png")
    landmarks = FacePipeline.load().analyze(photo, landmarks=True).landmarks
    assert landmarks is not None
    height, width = photo.shape[:2]

    def pixel(index: int, down: float = 0.0) -> tuple[int, int]:
        x, y = landmarks[index][0] * width, landmarks[index][1] * height
        return round(y + down), round(x)

    assert lower_eyelids(photo, landmarks, 0.0) is photo
    shut = lower_eyelids(photo, landmarks, 1.0)
    assert np.array_equal(shut, lower_eyelids(photo, landmarks, 1.0))  # deterministic
    changed = np.abs(shut.astype(int) - photo.astype(int)).sum(axis=2) > 0
    for upper, lower in ((159, 145), (386, 374)):  # each eye's mid upper and lower lid
        gap = landmarks[lower][1] * height - landmarks[upper][1] * height
        # The upper part of the eye now shows the lid; the lower lid and below stay.
        assert changed[pixel(upper, gap / 3)]
        assert not changed[pixel(lower, 2)]
    # The mouth, the nose and the cheeks are untouched: only the eyes' columns move.
    for far in (13, 1, 234, 454):
        assert not changed[pixel(far)]
    half = lower_eyelids(photo, landmarks, 0.5)
    assert 0 < int((half != photo).any(axis=2).sum()) < int(changed.sum())
    with pytest.raises(ValueError, match="closure"):
        lower_eyelids(photo, landmarks, 1.5)
