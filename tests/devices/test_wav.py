"""WAV chunks' float samples: whatever a float WAV holds, what reaches the speaker is within
full scale (the decoder fuzzer found a 64-bit float chunk whose 2.0 came through)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from faced.devices.wav import parse_wav

PAST_FULL_SCALE = [0.5, 2.0, -3.0, float("nan"), 1e300, -float("inf")]
CLIPPED = [0.5, 1.0, -1.0, 0.0, 1.0, -1.0]


def _float_wav(values: list[float], bits: int) -> bytes:
    data = struct.pack(f"<{len(values)}{'d' if bits == 64 else 'f'}", *values)
    block = bits // 8
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bits", [32, 64])
def test_float_samples_past_full_scale_or_nan_are_clipped(bits: int) -> None:
    # 1e300 does not fit a 32-bit float: +inf stands in for it there.
    values = [v if bits == 64 or v != 1e300 else float("inf") for v in PAST_FULL_SCALE]
    floats = parse_wav(_float_wav(values, bits)).floats()
    assert floats.dtype == np.float32 and floats.shape == (len(values), 1)
    assert floats[:, 0].tolist() == CLIPPED
