"""The ``v4l2:/dev/videoN`` camera source: USB webcams through OpenCV's V4L2 back end.

Owns what a webcam is asked for: MJPEG first (YUYV is the driver's fallback), a one-frame
driver buffer, the configured resolution and frame rate; and the "no such device" check.
Does not own reading (faced.devices.camera.opencv) or reopening an unplugged camera (the
capture thread).
Why: USB webcams are the common camera off the Pi.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from faced.devices.camera.opencv import CaptureSource
from faced.devices.camera.source import CameraError


class V4l2Source(CaptureSource):
    """A V4L2 device (``/dev/videoN``) at the configured size and rate."""

    def __init__(self, device: str, size: tuple[int, int], fps: float) -> None:
        super().__init__(f"v4l2:{device}", device, cv2.CAP_V4L2, size=size, fps=fps)

    def _check(self) -> None:
        if not Path(self._target).exists():
            raise CameraError(f"{self._target}: no such device")

    def _configure(self, capture: cv2.VideoCapture) -> None:
        # MJPEG first: USB 2 webcams deliver 640x480@30 and above only compressed; the
        # driver keeps YUYV when MJPEG is not offered.
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the latest frame, not a backlog
        super()._configure(capture)


__all__ = ["V4l2Source"]
