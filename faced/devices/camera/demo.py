"""The ``demo`` camera source: a photograph drifting, zooming and tilting like a person at a
screen, rendered live.

Owns turning the verified demo photo (faced.devices.demo_photo installs and checks it) into
an endless paced stream of frames drawn by faced.vision.synthetic.
Does not own the photo's download or the drawing.
Why: ``make run`` must show a tracked face on a machine without a camera.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faced.devices.camera.source import CameraError, Image, rgb_frame


class DemoSource:
    """A photograph drifting, zooming and tilting like a person at a screen, rendered live
    (the photograph is the verified one faced.devices.demo_photo installs with the models)."""

    name = "demo"

    def __init__(self, model_dir: Path, size: tuple[int, int], fps: float) -> None:
        self.model_dir = model_dir
        self._size = size
        self._fps = fps
        self._photo: Image | None = None
        self._index = 0

    @property
    def pace_fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        from faced.devices.demo_photo import DemoPhotoError, read_verified  # noqa: PLC0415

        try:
            data = read_verified(self.model_dir)
        except DemoPhotoError as exc:
            raise CameraError(str(exc)) from None
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CameraError("the demo photo cannot be decoded")
        self._photo = rgb_frame(bgr, self.name)

    def read(self) -> Image:
        from faced.vision.synthetic import render_frame  # noqa: PLC0415  (only for demo)

        if self._photo is None:
            raise CameraError("not open")
        frame = render_frame(self._photo, self._index, self._size)
        self._index += 1
        return frame

    def close(self) -> None:
        self._photo = None


__all__ = ["DemoSource"]
