"""Live cameras through OpenCV's ``cv2.VideoCapture``: what the V4L2 and GStreamer sources
share.

Owns opening a capture, reading it (the latest frame, converted to RGB) and releasing it;
``CaptureSource`` takes any OpenCV capture API.
Does not own what a back end checks before opening or asks of the device after (the hooks
``_check`` and ``_configure``: faced.devices.camera.v4l2, faced.devices.camera.gstreamer).
Why: both back ends are one VideoCapture with a different API flag; the reading is written
once.
"""

from __future__ import annotations

import cv2

from faced.devices.camera.source import CameraError, Image, rgb_frame


class CaptureSource:
    """A live camera through cv2.VideoCapture (V4L2 webcams, GStreamer pipelines)."""

    def __init__(
        self,
        name: str,
        target: str,
        api: int,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> None:
        self.name = name
        self._target = target
        self._api = api
        self._size = size
        self._fps = fps
        self._capture: cv2.VideoCapture | None = None

    @property
    def pace_fps(self) -> float | None:
        return None

    def _check(self) -> None:
        """CameraError when this source cannot open here at all (before trying)."""

    def _configure(self, capture: cv2.VideoCapture) -> None:
        """Ask the opened capture for the configured size and rate."""
        if self._size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        if self._fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self._fps)

    def open(self) -> None:
        self._check()
        capture = cv2.VideoCapture(self._target, self._api)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"{self._target}: cannot open")
        self._configure(capture)
        self._capture = capture

    def read(self) -> Image:
        capture = self._capture
        if capture is None:
            raise CameraError("not open")
        ok, frame = capture.read()
        if not ok:
            raise CameraError(f"{self._target}: read failed (unplugged?)")
        return rgb_frame(frame, self.name)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = None


__all__ = ["CaptureSource"]
