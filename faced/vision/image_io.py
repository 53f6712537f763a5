"""Image bytes -> RGB uint8 array, safely; and the checks that come before decoding.

Owns: recognising the format (JPEG, PNG and WebP only) from the first bytes, reading the size
from the header, the byte and megapixel limits, decoding (EXIF orientation honoured), and
the wording of every way an image can be refused. Does not own: what an error means on the
wire (faced.api.analyze maps each ``ImageError`` kind to an HTTP status) or base64 transport.
Why apart: `faced analyze` and the API refuse an image with the same words, and a hostile
image is refused before it costs memory.

JPEGs without EXIF data (camera frames, what agents encode) are decoded by simplejpeg, the
same libjpeg-turbo as OpenCV's with the same pixels, but faster (`faced bench analyze`'s
in-process baseline times decode + analyze) and straight into the pipeline's RGBA layout;
everything else, and any JPEG simplejpeg refuses, by OpenCV. The size is read from the file
header first and anything over the megapixel limit is refused before a single pixel is
decoded, so a small file that inflates to gigabytes (a decompression bomb) costs nothing.
Every failure is an ``ImageError`` whose message can be shown to a client as is.
"""

from __future__ import annotations

import struct
from typing import Any, Final, cast

import cv2
import numpy as np
import numpy.typing as npt
import simplejpeg

DEFAULT_MAX_MEGAPIXELS: Final = 40.0
PIPELINE_RGBA_MAX_MEGAPIXELS: Final = 4.0
"""``decode_for_pipeline`` gives RGBA up to this size: the pipeline's warps run markedly
faster on 4 channels, and a third more memory only matters for big photographs."""
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# SOF markers carrying the frame size (not DHT C4, JPG C8, DAC CC).
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_EXIF: Final = b"Exif\x00\x00"  # an APP1 segment's identifier


class ImageError(ValueError):
    """The bytes are not an image faced accepts; the message says why. This class itself:
    a corrupt or truncated image (its subclasses are the other reasons)."""


class EmptyImage(ImageError):
    """No bytes at all."""


class NotAnImage(ImageError):
    """Bytes of some other format than JPEG, PNG or WebP."""


class ImageTooLarge(ImageError):
    """More bytes, or more pixels, than the limit."""


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like an encoded image (a cheap look at the magic numbers,
    to tell an image apart from a msgpack message; the header is checked later)."""
    return data[:3] == b"\xff\xd8\xff" or data[:4] in (b"\x89PNG", b"RIFF")


def check_image(data: bytes, *, max_bytes: int, max_megapixels: float, hint: str = "") -> None:
    """Cheap header checks, no pixel decoded: ``EmptyImage``, ``ImageTooLarge`` (bytes or
    megapixels; ``hint`` is appended to the megapixel message, e.g. the setting's name),
    ``NotAnImage``, or ``ImageError`` for a corrupt header."""
    if not data:
        raise EmptyImage("image is empty")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"image too large: {len(data)} bytes, limit {max_bytes}")
    _kind, width, height, _exif = _header(data)
    _check_megapixels(width, height, max_megapixels, hint)


def _check_megapixels(width: int, height: int, max_megapixels: float, hint: str = "") -> float:
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        raise ImageTooLarge(
            f"image is {width}x{height} ({megapixels:.1f} MP), "
            f"over the {max_megapixels:g} MP limit{hint}"
        )
    return megapixels


def image_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == _PNG_SIGNATURE:
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_header(data: bytes) -> tuple[int, int, bool]:
    """(width, height, has_exif) from the segments before the frame header."""
    pos = 2
    end = len(data)
    exif = False
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG: bad marker in header")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise ImageError("corrupt JPEG: bad segment length")
        if marker == 0xE1 and data[pos + 4 : pos + 10] == _EXIF:
            exif = True
        if marker in _JPEG_SOF:
            if pos + 9 > end:
                break
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height, exif
        pos += 2 + length
    raise ImageError("corrupt or truncated JPEG: no frame header")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("corrupt or truncated PNG: no IHDR header")
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ImageError("corrupt or truncated WebP: no frame header")


def image_size(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header alone."""
    kind, width, height, _exif = _header(data)
    return kind, width, height


def _header(data: bytes) -> tuple[str, int, int, bool]:
    """(format, width, height, has_exif)."""
    kind = image_format(data)
    exif = False
    if kind == "jpeg":
        width, height, exif = _jpeg_header(data)
    elif kind == "png":
        width, height = _png_size(data)
    elif kind == "webp":
        width, height = _webp_size(data)
    else:
        raise NotAnImage("not a JPEG, PNG or WebP image")
    if width <= 0 or height <= 0:
        raise ImageError(f"corrupt {kind.upper()}: {width}x{height} pixels")
    return kind, width, height, exif


def from_opencv(
    frame: npt.NDArray[Any], *, rgba: bool = False, out: npt.NDArray[np.uint8] | None = None
) -> npt.NDArray[np.uint8]:
    """An OpenCV frame (grey, BGR or BGRA) as RGB, or RGBA with ``rgba``; written into
    ``out`` when it has the right shape. ValueError for any other shape."""
    if frame.ndim == 2:
        code = cv2.COLOR_GRAY2RGBA if rgba else cv2.COLOR_GRAY2RGB
    elif frame.ndim == 3 and frame.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGBA if rgba else cv2.COLOR_BGRA2RGB
    elif frame.ndim == 3 and frame.shape[2] == 3:
        code = cv2.COLOR_BGR2RGBA if rgba else cv2.COLOR_BGR2RGB
    else:
        raise ValueError(f"frames of shape {frame.shape}")
    if out is not None and out.shape == (*frame.shape[:2], 4 if rgba else 3):
        return cast(npt.NDArray[np.uint8], cv2.cvtColor(frame, code, dst=out))
    return cast(npt.NDArray[np.uint8], cv2.cvtColor(frame, code))


def decode_image(
    data: bytes | bytearray | memoryview, *, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> npt.NDArray[np.uint8]:
    """Decode JPEG/PNG/WebP bytes to an H x W x 3 RGB uint8 array (EXIF orientation
    applied; grey and alpha images become RGB)."""
    return _decode(data, max_megapixels, rgba_up_to=0.0)


def decode_for_pipeline(
    data: bytes | bytearray | memoryview, *, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
) -> npt.NDArray[np.uint8]:
    """``decode_image`` for FacePipeline.analyze: the same pixels, as RGBA (its working
    layout, no conversion later) up to PIPELINE_RGBA_MAX_MEGAPIXELS, RGB above."""
    return _decode(data, max_megapixels, rgba_up_to=PIPELINE_RGBA_MAX_MEGAPIXELS)


def _decode(
    data: bytes | bytearray | memoryview, max_megapixels: float, rgba_up_to: float
) -> npt.NDArray[np.uint8]:
    raw = bytes(data) if not isinstance(data, bytes) else data
    if not raw:
        raise EmptyImage("empty image data")
    kind, width, height, exif = _header(raw)
    megapixels = _check_megapixels(width, height, max_megapixels)
    rgba = megapixels <= rgba_up_to
    if kind == "jpeg" and not exif:
        try:
            return cast(
                npt.NDArray[np.uint8],
                simplejpeg.decode_jpeg(raw, colorspace="RGBA" if rgba else "RGB"),
            )
        except ValueError:
            pass  # CMYK, a recoverable error...: OpenCV decides, as for every other file
    try:
        decoded = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        # OpenCV refuses some headers ours let through (a side over 2^20 pixels, within
        # the megapixel limit) by raising: the same refusal as any undecodable image.
        decoded = None
    if decoded is None or decoded.size == 0:
        raise ImageError(f"corrupt or truncated {kind.upper()}: cannot decode")
    return from_opencv(decoded, rgba=rgba)
