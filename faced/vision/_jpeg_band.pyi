"""Types of the optional C extension faced/vision/_jpeg_band.c (built by setup.py)."""

from typing import Any

import numpy.typing as npt

def decode_band(
    jpeg: bytes | memoryview | npt.NDArray[Any],
    out: bytearray | memoryview | npt.NDArray[Any],
    left: int,
    top: int,
    right: int,
    bottom: int,
    /,
) -> tuple[int, int, int, int]:
    """Decode the JPEG's pixels in [left, right) x [top, bottom) as RGBA into ``out`` (a
    writable C-contiguous buffer of the whole frame's RGBA size); returns the rectangle
    actually written. ValueError when the JPEG does not decode cleanly or does not fit."""
