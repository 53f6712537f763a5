"""What every camera source is: the ``Source`` port, its error, and its frames' format.

Owns ``Source`` (open / read / close, all in the capture thread), ``CameraError`` (a source
that cannot open or read, saying why in a few words) and ``rgb_frame``, the one check and
conversion of a frame OpenCV or a driver hands over.
Does not own any back end (one module each beside this one) or the capture thread
(faced.devices.camera.capture).
Why: the capture thread and every back end meet here, so neither imports the other.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from faced.vision.image_io import from_opencv

Image = npt.NDArray[np.uint8]


class CameraError(Exception):
    """A source cannot be opened or read; the message says why, in a few words."""


class Source(Protocol):
    """One camera back end. All three calls run in the capture thread and may block."""

    name: str

    def open(self) -> None: ...

    def read(self) -> Image:
        """The next frame as RGB (H x W x 3 uint8, owned by the caller); CameraError."""
        ...

    @property
    def pace_fps(self) -> float | None:
        """The rate to pace reads at (files, demo); None for live cameras, which pace
        themselves."""
        ...

    def close(self) -> None: ...


def rgb_frame(frame: Any, what: str) -> Image:
    """An OpenCV-ordered frame (grey, BGR, BGRA) from ``what`` as a new RGB array;
    CameraError when it is not a usable image."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise CameraError(f"{what} returned no usable frame")
    try:
        return from_opencv(frame)
    except ValueError as exc:
        raise CameraError(f"{what} returned {exc}") from None


__all__ = ["CameraError", "Image", "Source", "rgb_frame"]
