"""VideoReader: Motion-JPEG through libjpeg-turbo, everything else through OpenCV, and the
switch to OpenCV when a packet will not decode."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.vision.video import VideoError, VideoReader

SIZE = (96, 64)  # width, height
FRAMES = 8


def _frames() -> list[np.ndarray]:
    """BGR frames, each a different gradient: a frame read in the wrong order shows."""
    ys, xs = np.mgrid[0 : SIZE[1], 0 : SIZE[0]]
    return [
        np.stack([(xs * 2 + 20 * i) % 256, ys * 3, np.full_like(xs, 25 * i)], axis=-1).astype(
            np.uint8
        )
        for i in range(FRAMES)
    ]


def _write(path: Path, fourcc: str) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, SIZE)
    assert writer.isOpened()
    for frame in _frames():
        writer.write(frame)
    writer.release()
    return path


def _opencv_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def _read_all(reader: VideoReader, reuse: bool = False) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    frame = None
    while (frame := reader.read(frame if reuse else None)) is not None:
        frames.append(frame.copy())
    return frames


def _close_to(ours: np.ndarray, theirs: np.ndarray) -> bool:
    # FFmpeg's IDCT and chroma upsampling differ from libjpeg-turbo's by ~1 grey level.
    return bool(np.abs(ours.astype(int) - theirs).mean() < 2.0)


@pytest.mark.parametrize("layout", ["rgb", "rgba"])
def test_motion_jpeg_is_decoded_by_libjpeg_turbo(tmp_path: Path, layout: str) -> None:
    clip = _write(tmp_path / "clip.avi", "MJPG")
    expected = _opencv_frames(clip)
    with VideoReader(clip, layout) as reader:  # type: ignore[arg-type]
        assert (reader.codec, reader.decoder) == ("MJPG", "libjpeg-turbo")
        assert reader.fps == 10.0 and reader.frame_count == FRAMES
        frames = _read_all(reader, reuse=True)
        assert len(frames) == FRAMES
        for ours, theirs in zip(frames, expected, strict=True):
            assert ours.shape == (SIZE[1], SIZE[0], 4 if layout == "rgba" else 3)
            assert _close_to(ours[:, :, :3], theirs)
            if layout == "rgba":
                assert (ours[:, :, 3] == 255).all()
        # Each frame is nearer its own OpenCV twin than the next frame's.
        assert not _close_to(frames[0][:, :, :3], expected[1])
        assert reader.rewind()
        first = reader.read()
        assert first is not None and np.array_equal(first, frames[0])


def test_other_codecs_are_decoded_by_opencv(tmp_path: Path) -> None:
    clip = _write(tmp_path / "clip.mp4", "mp4v")
    expected = _opencv_frames(clip)
    with VideoReader(clip, "rgba") as reader:
        assert reader.decoder == "opencv"
        frames = _read_all(reader, reuse=True)
    assert len(frames) == len(expected) == FRAMES
    for ours, theirs in zip(frames, expected, strict=True):
        assert np.array_equal(ours[:, :, :3], theirs) and (ours[:, :, 3] == 255).all()


def _with_bad_frame(clip: Path, index: int) -> None:
    """An end-of-image marker in the middle of frame ``index``'s entropy-coded data:
    libjpeg-turbo calls that corrupt, FFmpeg conceals it and still returns a frame."""
    data = bytearray(clip.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == FRAMES
    scan = data.index(b"\xff\xda", starts[index])
    middle = (scan + starts[index + 1]) // 2
    data[middle : middle + 2] = b"\xff\xd9"
    clip.write_bytes(bytes(data))


def test_a_packet_libjpeg_turbo_refuses_switches_to_opencv(tmp_path: Path) -> None:
    clip = _write(tmp_path / "clip.avi", "MJPG")
    _with_bad_frame(clip, 3)
    expected = _opencv_frames(clip)
    assert len(expected) == FRAMES
    with VideoReader(clip) as reader:
        assert reader.decoder == "libjpeg-turbo"
        frames = _read_all(reader)
        assert reader.decoder == "opencv"
    assert len(frames) == FRAMES
    for ours, theirs in zip(frames[:3], expected[:3], strict=True):
        assert _close_to(ours, theirs)
    for ours, theirs in zip(frames[3:], expected[3:], strict=True):
        assert np.array_equal(ours, theirs)  # OpenCV's own pixels from the bad frame on


def test_a_bad_frame_in_a_file_gone_meanwhile_just_ends_it(tmp_path: Path) -> None:
    # The switch to OpenCV reopens the file; when it has been removed (or cut short) since,
    # the video simply has no further frame.
    clip = _write(tmp_path / "clip.avi", "MJPG")
    _with_bad_frame(clip, 3)
    with VideoReader(clip) as reader:
        assert all(reader.read() is not None for _ in range(3))
        clip.unlink()
        assert reader.read() is None and reader.decoder == "opencv"
        assert reader.read() is None and not reader.rewind()


def test_unreadable_files_are_refused_naming_them(tmp_path: Path) -> None:
    missing = tmp_path / "missing.avi"
    with pytest.raises(VideoError, match=re.escape(f"{missing}: cannot open the video")):
        VideoReader(missing)
    text = tmp_path / "notes.avi"
    text.write_text("not a video")
    with pytest.raises(VideoError, match=re.escape(f"{text}: cannot open the video")):
        VideoReader(text)


@pytest.mark.parametrize("fourcc", ["MJPG", "mp4v"])
def test_resampling_passes_over_the_dropped_frames_undecoded(tmp_path: Path, fourcc: str) -> None:
    clip = _write(tmp_path / f"clip-{fourcc}.avi", fourcc)  # 8 frames at 10 fps
    with VideoReader(clip, "rgba") as reader:
        every = [(i, t, f.copy()) for i, t, f in reader.timed_frames()]
    with VideoReader(clip, "rgba") as reader:
        # 4 fps from 10: the first frame of each 0.25 s step, 2.5 frames long: 0, 3 and 5
        kept = [(i, t, f.copy()) for i, t, f in reader.timed_frames(0.25)]
        assert reader.skipped_frames == FRAMES - len(kept)
    assert [(i, t) for i, t, _ in kept] == [(0, 0), (3, 300), (5, 500)]
    for index, timestamp, frame in kept:
        assert (index, timestamp) == every[index][:2]
        assert np.array_equal(frame, every[index][2])


def test_a_damaged_frame_resampling_drops_does_not_switch_decoders(tmp_path: Path) -> None:
    clip = _write(tmp_path / "clip.avi", "MJPG")
    _with_bad_frame(clip, 1)  # dropped at 4 fps
    with VideoReader(clip, "rgba") as reader:
        kept = [index for index, _, _ in reader.timed_frames(0.25)]
        assert reader.decoder == "libjpeg-turbo"
    assert kept == [0, 3, 5]
