"""One-Euro landmark smoothing with MediaPipe's parameters, vectorised over all points.

Owns the One-Euro filter over a stream's landmarks (pure).
Does not own when a stream starts or ends (faced.vision.tracker resets it).
Why: raw landmarks jitter frame to frame; MediaPipe's own filter is the reference.

Same arithmetic as MediaPipe's OneEuroFilter and
LandmarksSmoothingCalculator: coordinates in pixels (x*W, y*H, z*W); the sampling frequency
comes from the timestamps (the default 30 Hz until two non-zero timestamps were seen); the
derivative is scaled by 1 / object scale (mean of the landmarks' bounding-box width and
height in pixels) so the filter behaves the same for near and far faces; a timestamp that
does not advance passes the values through unfiltered.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

MIN_CUTOFF: Final = 0.05
BETA: Final = 80.0
DERIVATE_CUTOFF: Final = 1.0
DEFAULT_FREQUENCY: Final = 30.0
MIN_OBJECT_SCALE: Final = 1e-6


def _alpha(cutoff: F64 | float, frequency: float) -> F64 | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * frequency)


class OneEuroFilter:
    """One-Euro filter over an array of values sharing one clock and one value scale."""

    def __init__(
        self,
        min_cutoff: float = MIN_CUTOFF,
        beta: float = BETA,
        derivate_cutoff: float = DERIVATE_CUTOFF,
        frequency: float = DEFAULT_FREQUENCY,
    ) -> None:
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.derivate_cutoff = derivate_cutoff
        self._default_frequency = frequency
        self.reset()

    def reset(self) -> None:
        self.frequency = self._default_frequency
        # MediaPipe's kUninitializedTimestamp (OneEuroFilter::Create): a stream whose first
        # frame is at timestamp 0 (a video file) is filtered from that frame on.
        self._last_ns = -1
        self._raw: F64 | None = None
        self._value: F64 | None = None
        self._derivative: F64 | None = None
        self._scratch: F64 | None = None

    def apply(self, values: F64, timestamp_ns: int, value_scale: float = 1.0) -> F64:
        return self.step(values, timestamp_ns, value_scale).copy()

    def step(self, values: F64, timestamp_ns: int, value_scale: float = 1.0) -> F64:
        """``apply`` without the copy: the filter's own state, valid until the next call
        (``values`` is not kept either way). A timestamp that does not advance returns
        ``values`` itself."""
        if self._last_ns >= timestamp_ns:
            return values
        if self._last_ns != 0 and timestamp_ns != 0:
            self.frequency = 1e9 / (timestamp_ns - self._last_ns)
        self._last_ns = timestamp_ns
        raw, value, derivative, work = self._raw, self._value, self._derivative, self._scratch
        if (
            raw is None
            or value is None
            or derivative is None
            or work is None
            or raw.shape != values.shape
        ):
            # First sample: both low-pass filters start at the input (derivative 0).
            self._raw = values.copy()
            self._value = values.copy()
            self._derivative = np.zeros_like(values)
            self._scratch = np.empty_like(values)
            return self._value
        # The arithmetic of the textbook form, in place: 478 x 3 temporaries per operation
        # cost more than the operations (same operations, same order, same results).
        frequency = self.frequency
        np.subtract(values, raw, out=work)
        work *= value_scale * frequency
        work -= derivative
        work *= _alpha(self.derivate_cutoff, frequency)
        derivative += work
        # cutoff = min_cutoff + beta |derivative|; alpha = 1 / (1 + frequency / (2 pi cutoff))
        np.abs(derivative, out=work)
        work *= self.beta
        work += self.min_cutoff
        work *= 2 * math.pi
        np.divide(1.0, work, out=work)
        work *= frequency
        work += 1.0
        np.divide(1.0, work, out=work)
        # value += alpha (values - value)
        np.subtract(values, value, out=raw)
        raw *= work
        value += raw
        np.copyto(raw, values)
        return value


class LandmarkSmoother:
    """Smooths one face's normalized landmarks (N, 3) the way MediaPipe's face landmarker
    does in video and live-stream modes."""

    def __init__(self) -> None:
        self._filter = OneEuroFilter()
        self._size: tuple[int, int] | None = None
        self._scale = np.ones(3)
        self._pixels = np.empty((0, 3))

    def reset(self) -> None:
        self._filter.reset()

    def apply(
        self, landmarks: npt.NDArray[np.floating], width: int, height: int, timestamp_ns: int
    ) -> npt.NDArray[np.float32]:
        if self._size != (width, height):
            self._size = (width, height)
            self._scale = np.array([width, height, width], dtype=np.float64)
        scale = self._scale
        if self._pixels.shape != landmarks.shape:
            self._pixels = np.empty(landmarks.shape, dtype=np.float64)
        pixels = np.multiply(landmarks, scale, out=self._pixels)
        # Column by column: numpy reduces an (N, 2) array along its first axis several
        # times slower than its columns one by one.
        xs, ys = pixels[:, 0], pixels[:, 1]
        object_scale = float((xs.max() - xs.min()) + (ys.max() - ys.min())) / 2
        if object_scale < MIN_OBJECT_SCALE:
            return landmarks.astype(np.float32)
        smoothed = self._filter.step(pixels, timestamp_ns, 1.0 / object_scale)
        return np.divide(smoothed, scale, out=np.empty(landmarks.shape, dtype=np.float32))
