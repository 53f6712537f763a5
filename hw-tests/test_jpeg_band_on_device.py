"""faced's JPEG band decoder on this device's libjpeg-turbo (NEON on a Pi): the same pixels as
a whole decode, and what a face's band saves here.

Prints the figures (a measurement, not a timed test). Skips where faced was installed from
a pure wheel (FACED_PURE_PYTHON=1, or built without a compiler): faced then decodes whole
frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import simplejpeg

from faced.vision import video


def _frame(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[0:height, 0:width]
    smooth = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1)
    noise = rng.integers(0, 40, (height, width, 3))
    return np.ascontiguousarray((smooth + noise).clip(0, 255).astype(np.uint8))


def _best_ms(decode: Callable[[], object]) -> float:
    """ms per call: the best of 7 runs of 20 calls (called at once: nothing outlives it)."""
    runs = []
    for _ in range(7):
        began = time.perf_counter()
        for _ in range(20):
            decode()
        runs.append((time.perf_counter() - began) / 20 * 1000)
    return min(runs)


def test_band_decoding_matches_and_saves_time_on_this_device() -> None:
    if not video.BAND_DECODING:
        pytest.skip("faced's C extension (faced.vision._jpeg_band) is not built here")
    from faced.vision._jpeg_band import decode_band  # noqa: PLC0415

    rng = np.random.default_rng(11)
    for width, height in [(640, 480), (1280, 720)]:
        for sampling in ("444", "422", "420"):
            jpeg = simplejpeg.encode_jpeg(_frame(width, height), colorsubsampling=sampling)
            whole = simplejpeg.decode_jpeg(jpeg, colorspace="RGBA")
            out = np.zeros_like(whole)
            for _ in range(20):
                left = int(rng.integers(0, width - 1))
                top = int(rng.integers(0, height - 1))
                right = int(rng.integers(left + 1, width + 1))
                bottom = int(rng.integers(top + 1, height + 1))
                decode_band(jpeg, out, left, top, right, bottom)
                assert np.array_equal(out[top:bottom, left:right], whole[top:bottom, left:right])
        # A face's band as a tracker asks for it: ~a third of the width, half the rows.
        band = (width // 3, height // 4, 2 * width // 3, 3 * height // 4)
        whole_ms = _best_ms(lambda: simplejpeg.decode_jpeg(jpeg, colorspace="RGBA", buffer=out))  # noqa: B023
        band_ms = _best_ms(lambda: decode_band(jpeg, out, *band))  # noqa: B023
        print(
            f"\n{width}x{height} 4:2:0 JPEG decode: whole {whole_ms:.2f} ms, "
            f"the face's band {band_ms:.2f} ms"
        )
