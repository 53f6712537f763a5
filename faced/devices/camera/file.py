"""The ``file:`` camera source: a video looped forever at its own frame rate, or a still
image repeated.

Owns reading and looping one file through faced.vision.video (decoding is that module's),
and noticing that the file was removed (within ``PRESENCE_CHECK_S``, as a camera that is
unplugged fails its next read). Does not own pacing (the capture thread paces at
``pace_fps``) or retrying a vanished file.
Why: a file is the camera of tests, demos and benchmarks; it must behave like a camera that
never ends, and fail like one that goes away.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

import cv2

from faced.devices.camera.source import CameraError, Image, rgb_frame
from faced.vision.video import VideoError, VideoReader

VIDEO_SUFFIXES: Final = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg"})
PRESENCE_CHECK_S: Final = 0.25
"""How often a read looks whether the file is still there: an open file stays readable
after it is removed (and a still image is held in memory), so without a look a removed
file would never be noticed. One stat() per quarter second costs nothing."""


class FileSource:
    """A video file looped forever at its own frame rate, or a still image repeated."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._default_fps = fps
        self._video: VideoReader | None = None
        self._still: Image | None = None
        self._fps: float | None = None
        self._checked_at = 0.0

    @property
    def pace_fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        if not self.path.is_file():
            raise CameraError(f"{self.path}: no such file")
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            still = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
            if still is None:
                raise CameraError(f"{self.path}: not a readable image or video")
            self._still = rgb_frame(still, self.name)
            self._fps = self._default_fps
            return
        try:
            video = VideoReader(self.path)
        except VideoError as exc:
            raise CameraError(str(exc)) from None
        fps = video.fps
        self._fps = fps if fps is not None and fps <= 240 else self._default_fps
        self._video = video

    def read(self) -> Image:
        now = time.monotonic()
        if now - self._checked_at >= PRESENCE_CHECK_S:
            self._checked_at = now
            if not self.path.is_file():
                raise CameraError(f"{self.path}: the file vanished")
        if self._still is not None:
            return self._still.copy()
        video = self._video
        if video is None:
            raise CameraError("not open")
        frame = video.read()
        if frame is None:
            # End of the clip: loop. A file that vanished or was truncated fails here too,
            # and then reopening it (by the capture loop) says what is wrong.
            if not self.path.is_file():
                raise CameraError(f"{self.path}: the file vanished")
            video.rewind()
            frame = video.read()
            if frame is None:
                raise CameraError(f"{self.path}: no frame could be decoded")
        return frame

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
        self._video = None
        self._still = None


__all__ = ["VIDEO_SUFFIXES", "FileSource"]
