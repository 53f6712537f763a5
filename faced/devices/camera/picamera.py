"""The ``picamera2`` camera source: Raspberry Pi camera modules through picamera2.

Owns configuring and starting the camera (video configuration, RGB888, the configured size
and rate, two buffers) and copying each request's array out before releasing the request.
picamera2 exists only on the Pi (python3-picamera2): it is imported when this source opens.
Does not own reopening after a failure (the capture thread).
Why: the Pi's camera modules have no V4L2 path OpenCV can drive well; libcamera is theirs.
"""

from __future__ import annotations

import logging
from typing import Any

from faced.devices.camera.source import CameraError, Image, rgb_frame

log = logging.getLogger(__name__)


class Picamera2Source:
    """A Raspberry Pi camera module through picamera2 (imported here, only on the Pi)."""

    name = "picamera2"

    def __init__(self, size: tuple[int, int], fps: float) -> None:
        self._size = size
        self._fps = fps
        self._camera: Any = None

    @property
    def pace_fps(self) -> float | None:
        return None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415
        except ImportError:
            raise CameraError(
                "picamera2 is not installed (apt install python3-picamera2)"
            ) from None
        try:
            camera = Picamera2()
            # RGB888 in libcamera's naming is B,G,R in memory: what OpenCV calls BGR.
            config = camera.create_video_configuration(
                main={"size": self._size, "format": "RGB888"},
                controls={"FrameRate": self._fps},
                buffer_count=2,
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises a variety of errors for a missing camera
            raise CameraError(f"picamera2: {exc}") from None
        self._camera = camera

    def read(self) -> Image:
        camera = self._camera
        if camera is None:
            raise CameraError("not open")
        try:
            request = camera.capture_request()
        except Exception as exc:
            raise CameraError(f"picamera2: {exc}") from None
        try:
            # The array views the request's DMA buffer: convert (a copy) before release.
            bgr = request.make_array("main")
            return rgb_frame(bgr, self.name)
        finally:
            request.release()

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
                camera.close()
            except Exception:
                log.warning("picamera2 did not close cleanly", exc_info=True)


__all__ = ["Picamera2Source"]
