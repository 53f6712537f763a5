"""Decoding only a tracked frame's band (faced.vision._jpeg_band, Roi.footprint,
Tracker.next_footprint, VideoReader's ``band``): the same pixels where the crop reads, the
same analysis of a whole clip, and every bad input a ValueError and a whole decode."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import simplejpeg

from faced.vision import video
from faced.vision.landmarks import CROP_SIZE, Roi
from faced.vision.pipeline import FacePipeline
from faced.vision.synthetic import cached_clip
from faced.vision.video import VideoReader
from tests import data

# `make test` builds it (setup.py; .ci/debian-packages.txt has the compiler and headers):
# missing here is a failure, not a skip.
try:
    from faced.vision._jpeg_band import decode_band
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError(
        "faced.vision._jpeg_band is not built: install gcc, python3-dev and "
        "libjpeg62-turbo-dev, then reinstall faced (rm .venv/.installed; make setup)"
    ) from missing

SAMPLINGS = ["444", "422", "420", "440", "411"]


def _photo(width: int, height: int) -> np.ndarray:
    rgb = data.load_rgb("lenna.png")
    return np.ascontiguousarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA))


def _jpegs() -> list[tuple[str, bytes]]:
    """Every layout a camera or encoder writes: each chroma subsampling, grey, progressive,
    sizes that are not whole MCUs."""
    out = []
    for width, height in [(640, 480), (131, 97), (1280, 720), (9, 17)]:
        photo = _photo(width, height)
        for sampling in SAMPLINGS:
            encoded = simplejpeg.encode_jpeg(photo, quality=85, colorsubsampling=sampling)
            out.append((f"{sampling} {width}x{height}", encoded))
        grey = np.ascontiguousarray(photo[:, :, 1:2])
        out.append((f"grey {width}x{height}", simplejpeg.encode_jpeg(grey, colorspace="GRAY")))
        ok, progressive = cv2.imencode(".jpg", photo[:, :, ::-1], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
        assert ok
        out.append((f"progressive {width}x{height}", progressive.tobytes()))
    return out


JPEGS = _jpegs()


def test_this_build_decodes_bands() -> None:
    assert video.BAND_DECODING


@pytest.mark.parametrize(("name", "jpeg"), JPEGS, ids=[name for name, _ in JPEGS])
def test_a_band_has_a_whole_decodes_pixels(name: str, jpeg: bytes) -> None:
    whole = simplejpeg.decode_jpeg(jpeg, colorspace="RGBA")
    height, width = whole.shape[:2]
    rng = np.random.default_rng(7)
    sentinel = np.full_like(whole, 77)
    for _ in range(40):
        left = int(rng.integers(0, width))
        right = int(rng.integers(left + 1, width + 1))
        top = int(rng.integers(0, height))
        bottom = int(rng.integers(top + 1, height + 1))
        out = sentinel.copy()
        done = decode_band(jpeg, out, left, top, right, bottom)
        assert np.array_equal(out[top:bottom, left:right], whole[top:bottom, left:right]), (
            name,
            (left, top, right, bottom),
        )
        # What it wrote is the rectangle it says, around the asked one; outside it, nothing.
        d_left, d_top, d_right, d_bottom = done
        assert 0 <= d_left <= left < right <= d_right <= width
        assert 0 <= d_top <= top < bottom <= d_bottom <= height
        untouched = np.ones((height, width), bool)
        untouched[d_top:d_bottom, d_left:d_right] = False
        assert (out[untouched] == 77).all()


def test_bad_inputs_are_value_errors() -> None:
    jpeg = dict(JPEGS)["420 131x97"]
    frame = np.zeros((97, 131, 4), np.uint8)
    cases = {
        "not a JPEG": (b"\x89PNG\r\n\x1a\n" + bytes(100), frame, (0, 0, 10, 10)),
        "empty": (b"", frame, (0, 0, 10, 10)),
        "cut in the header": (jpeg[:100], frame, (0, 0, 10, 10)),
        "cut in the band": (jpeg[: len(jpeg) // 2], frame, (0, 0, 131, 97)),
        "another size": (jpeg, np.zeros((96, 131, 4), np.uint8), (0, 0, 10, 10)),
        "RGB buffer": (jpeg, np.zeros((97, 131, 3), np.uint8), (0, 0, 10, 10)),
        "band outside": (jpeg, frame, (0, 0, 132, 10)),
        "empty band": (jpeg, frame, (10, 10, 10, 20)),
        "negative band": (jpeg, frame, (-1, 0, 10, 10)),
    }
    for name, (jpeg_data, out, band) in cases.items():
        with pytest.raises(ValueError, match=r"JPEG band|band \(") as refused:
            decode_band(jpeg_data, out, *band)
        assert str(refused.value), name
    for out in (bytes(97 * 131 * 4), np.zeros((97, 262, 4), np.uint8)[:, ::2]):
        with pytest.raises(TypeError, match="read-write bytes-like"):  # read-only, strided
            decode_band(jpeg, out, 0, 0, 10, 10)


def test_a_corrupt_band_is_an_error_not_patched_over() -> None:
    # An end-of-image marker inside the band's entropy-coded data: libjpeg would warn and
    # fill grey; the band decoder refuses, so the reader decodes the frame its usual way.
    jpeg = bytearray(dict(JPEGS)["420 640x480"])
    scan = jpeg.index(b"\xff\xda")
    middle = (scan + len(jpeg)) // 2
    jpeg[middle : middle + 2] = b"\xff\xd9"
    with pytest.raises(ValueError, match="JPEG band"):
        decode_band(bytes(jpeg), np.zeros((480, 640, 4), np.uint8), 0, 0, 640, 480)


def _random_roi(rng: np.random.Generator, width: int, height: int) -> Roi:
    side = float(rng.uniform(20, 1.4 * max(width, height)))
    return Roi(
        cx=float(rng.uniform(-0.3 * width, 1.3 * width)),
        cy=float(rng.uniform(-0.3 * height, 1.3 * height)),
        width=side * float(rng.uniform(0.7, 1.3)),
        height=side,
        rotation=float(rng.uniform(-math.pi, math.pi)),
    )


def test_a_regions_crop_reads_only_its_footprint() -> None:
    # The crop exactly as the landmark model makes it (bilinear, replicated borders), of a
    # photo and of the same photo with noise everywhere outside the footprint.
    width, height = 640, 480
    photo = cv2.cvtColor(_photo(width, height), cv2.COLOR_RGB2RGBA)
    rng = np.random.default_rng(3)
    for _ in range(300):
        roi = _random_roi(rng, width, height)
        left, top, right, bottom = roi.footprint(width, height)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        noisy = rng.integers(0, 256, photo.shape, dtype=np.uint8)
        noisy[top:bottom, left:right] = photo[top:bottom, left:right]
        crops = [
            cv2.warpAffine(
                image,
                roi.crop_matrix(),
                (CROP_SIZE, CROP_SIZE),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            for image in (photo, noisy)
        ]
        assert np.array_equal(crops[0], crops[1]), roi


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline.load(None, detector="auto")


@pytest.mark.slow
def test_a_clip_tracked_on_bands_is_the_clip_tracked_whole(
    pipeline: FacePipeline, tmp_path: Path
) -> None:
    clip = cached_clip(data.path("lenna.png"), tmp_path, 90)

    def track(band: bool) -> tuple[list[bytes], VideoReader, int]:
        results = []
        with VideoReader(clip, "rgba") as reader:
            tracker = pipeline.tracker()
            footprint = tracker.next_footprint if band else None
            for _, timestamp, frame in reader.timed_frames(band=footprint):
                analysis = tracker.process(frame, timestamp, landmarks=True)
                results.append(repr(analysis.faces).encode())
        return results, reader, tracker.detections

    whole, whole_reader, _ = track(band=False)
    banded, band_reader, detections = track(band=True)
    assert len(whole) == 90 and all(b"Face(" in r for r in whole)
    assert banded == whole  # landmarks, blendshapes, pose, eyes: every number
    assert whole_reader.band_frames == 0
    assert band_reader.band_frames == 90 - detections > 80


def test_a_tracker_needs_the_whole_frame_until_it_tracks(pipeline: FacePipeline) -> None:
    tracker = pipeline.tracker()
    assert tracker.next_footprint() is None  # no frame yet: detection
    empty = np.zeros((480, 640, 4), np.uint8)
    tracker.process(empty, 0)
    assert tracker.next_footprint() is None  # nobody found: detection again
    face = cv2.cvtColor(data.load_rgb("lenna.png"), cv2.COLOR_RGB2RGBA)
    tracker.process(face, 33)
    band = tracker.next_footprint()
    assert band is not None
    left, top, right, bottom = band
    region = tracker.regions[0]
    assert (left, top, right, bottom) == region.footprint(face.shape[1], face.shape[0])
    assert (right - left) * (bottom - top) < face.shape[0] * face.shape[1]


def test_a_frame_the_band_cannot_take_is_decoded_whole(tmp_path: Path) -> None:
    # A clip whose frames change size: the band of the old size does not fit the new one.
    path = tmp_path / "sizes.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for shade in (40, 120, 200):
        writer.write(np.full((48, 64, 3), shade, np.uint8))
    writer.release()
    with VideoReader(path, "rgba") as reader:
        out = np.zeros((48, 64, 4), np.uint8)
        first = reader.read(out, band=(0, 0, 8, 8))
        assert first is out and reader.band_frames == 1
        assert abs(int(out[4, 4, 0]) - 40) <= 2 and not out[20:].any()
        wrong_shape = np.zeros((10, 10, 4), np.uint8)
        second = reader.read(wrong_shape, band=(0, 0, 8, 8))  # whole, into a new array
        assert second is not None and second.shape == (48, 64, 4)
        assert reader.band_frames == 1 and abs(int(second[40, 60, 0]) - 120) <= 2
    with VideoReader(path, "rgb") as reader:  # bands are RGBA only: whole RGB frames
        frame = reader.read(np.zeros((48, 64, 3), np.uint8), band=(0, 0, 8, 8))
        assert frame is not None and reader.band_frames == 0 and frame[40, 60, 0] > 30


def test_a_build_without_the_extension_decodes_whole_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # setup.py leaves the extension out where it cannot be compiled (FACED_PURE_PYTHON, no
    # compiler or headers): the band is then only a hint, every frame comes whole.
    clip = cached_clip(data.path("lenna.png"), tmp_path, 3)
    with VideoReader(clip, "rgba") as reader:
        expected = [frame.copy() for _, _, frame in reader.timed_frames()]
    monkeypatch.setattr(video, "_jpeg_band", None)
    with VideoReader(clip, "rgba") as reader:
        frames = [frame.copy() for _, _, frame in reader.timed_frames(band=lambda: (0, 0, 8, 8))]
        assert reader.band_frames == 0
    assert all(np.array_equal(a, b) for a, b in zip(frames, expected, strict=True))
