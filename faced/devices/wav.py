"""WAV chunks: parse what an agent posts, and turn its samples into floats.

Owns parsing WAV chunks and decoding their samples to floats (pure: no I/O).
Does not own conversion to the device's format or playing (faced.devices.speaker).
Why: agents send WAV; a malformed one must be refused with a reason, not played as noise.

Pure: no I/O. ``parse_wav(data)`` reads the RIFF header of
one ``/api/audio`` chunk (or of espeak-ng's output) without copying the samples and
raises ``WavError`` naming the problem when it is not a WAV faced can play: 8-bit
unsigned, 16/24/32-bit signed integer or 32/64-bit float PCM (plain or
WAVE_FORMAT_EXTENSIBLE), mono or stereo, 8–192 kHz. ``Pcm.floats(start, stop)`` decodes a
range of frames to float32 in [-1, 1), one column per channel — the speaker's writer thread
decodes a slice at a time, so a queued chunk costs no more memory than its bytes.

Streamed WAVs (a pipe cannot seek back to fill in the sizes, so TTS engines write
0xFFFFFFFF or 0x7FFFF000) are accepted: a ``data`` chunk that claims more than the file
holds ends where the file does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]

MIN_RATE: Final = 8000
MAX_RATE: Final = 192000
_PCM: Final = 0x0001
_FLOAT: Final = 0x0003
_EXTENSIBLE: Final = 0xFFFE
_KNOWN_TAGS: Final = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM"}
_KNOWN_TAGS_MORE: Final = {0x0055: "MP3", 0x0050: "MPEG", 0x2000: "AC-3"}


class WavError(ValueError):
    """Not a WAV faced can play; the message says what is wrong, in a few words."""


@dataclass(frozen=True)
class Pcm:
    """The samples of one WAV: ``frames`` frames of ``channels`` samples at ``rate``."""

    rate: int
    channels: int
    encoding: str
    """``u8``, ``i16``, ``i24``, ``i32``, ``f32`` or ``f64`` (little-endian)."""
    width: int
    """Bytes per sample."""
    data: memoryview

    @property
    def frames(self) -> int:
        return len(self.data) // (self.width * self.channels)

    @property
    def seconds(self) -> float:
        return self.frames / self.rate

    def floats(self, start: int = 0, stop: int | None = None) -> Floats:
        """Frames ``start:stop`` as float32, shape (frames, channels)."""
        stop = self.frames if stop is None else min(stop, self.frames)
        frame_bytes = self.width * self.channels
        raw = self.data[start * frame_bytes : stop * frame_bytes]
        samples = _decode(raw, self.encoding)
        return samples.reshape(-1, self.channels)


def _decode(raw: memoryview, encoding: str) -> Floats:
    if encoding == "i16":
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) * np.float32(1 / 32768)
    if encoding == "u8":
        values = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - np.float32(128)
        return values * np.float32(1 / 128)
    if encoding == "i24":
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        # Into the top three bytes of an int32, so the sign comes along; then scale.
        packed = (triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)
        return packed.astype(np.float32) * np.float32(1 / 2147483648)
    if encoding == "i32":
        wide = np.frombuffer(raw, dtype="<i4").astype(np.float64) * (1 / 2147483648)
        return wide.astype(np.float32)
    if encoding == "f64":
        # Clipped in float64 first: a value past float32's range would become inf on the way.
        wide = np.frombuffer(raw, dtype="<f8")
        values = np.clip(np.nan_to_num(wide, nan=0.0), -1.0, 1.0).astype(np.float32)
    else:
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    # A float WAV may hold NaN or values past full scale; neither may reach the device.
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def _encoding(tag: int, bits: int, block_align: int, channels: int) -> tuple[str, int]:
    if tag == _PCM:
        encodings = {8: "u8", 16: "i16", 24: "i24", 32: "i32"}
        if bits not in encodings:
            raise WavError(f"unsupported WAV sample size: {bits}-bit PCM; expected 8, 16, 24 or 32")
        encoding = encodings[bits]
    elif tag == _FLOAT:
        if bits not in (32, 64):
            raise WavError(f"unsupported WAV sample size: {bits}-bit float; expected 32 or 64")
        encoding = "f32" if bits == 32 else "f64"
    else:
        name = _KNOWN_TAGS.get(tag) or _KNOWN_TAGS_MORE.get(tag) or "compressed"
        raise WavError(
            f"unsupported WAV encoding: format 0x{tag:04x} ({name}); expected PCM or float"
        )
    width = bits // 8
    if block_align != width * channels:
        raise WavError(
            f"inconsistent WAV header: block align {block_align} for {channels} channel(s) "
            f"of {bits} bits"
        )
    return encoding, width


def parse_wav(data: bytes) -> Pcm:
    """The PCM of a WAV file held in memory (no samples copied); ``WavError`` if it is not
    one faced can play."""
    view = memoryview(data)
    if len(data) < 12 or data[0:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[0:4] in (b"RIFX", b"RF64"):
            raise WavError(f"unsupported WAV variant {data[0:4].decode()}; expected RIFF")
        raise WavError("not a WAV file: expected a RIFF/WAVE header")
    position = 12
    fmt: tuple[int, int, int, int, int] | None = None
    while position + 8 <= len(data):
        chunk_id = bytes(data[position : position + 4])
        (size,) = struct.unpack_from("<I", data, position + 4)
        body = position + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise WavError("truncated WAV: the fmt chunk is incomplete")
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE:
                if size < 40 or body + 26 > len(data):
                    raise WavError("truncated WAV: the extensible fmt chunk is incomplete")
                (tag,) = struct.unpack_from("<H", data, body + 24)  # the sub-format GUID
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("invalid WAV: the data chunk comes before the fmt chunk")
            return _pcm(fmt, view[body : min(body + size, len(data))])
        position = body + size + (size & 1)  # chunks are padded to an even length
    if fmt is None:
        raise WavError("invalid WAV: no fmt chunk")
    raise WavError("invalid WAV: no data chunk")


def _pcm(fmt: tuple[int, int, int, int, int], samples: memoryview) -> Pcm:
    tag, channels, rate, block_align, bits = fmt
    if channels not in (1, 2):
        raise WavError(f"unsupported WAV: {channels} channels; expected mono or stereo")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavError(f"unsupported WAV sample rate {rate} Hz; expected {MIN_RATE}-{MAX_RATE}")
    encoding, width = _encoding(tag, bits, block_align, channels)
    whole = len(samples) - len(samples) % block_align  # a streamed WAV may stop mid-frame
    pcm = Pcm(rate=rate, channels=channels, encoding=encoding, width=width, data=samples[:whole])
    if pcm.frames == 0:
        raise WavError("empty WAV: the data chunk holds no samples")
    return pcm


__all__ = ["MAX_RATE", "MIN_RATE", "Floats", "Pcm", "WavError", "parse_wav"]
