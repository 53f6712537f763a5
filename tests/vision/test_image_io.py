"""decode_image and decode_for_pipeline: formats, EXIF orientation, the two JPEG decoders
agreeing, and every way bytes can be wrong."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from faced.vision.image_io import (
    PIPELINE_RGBA_MAX_MEGAPIXELS,
    ImageError,
    decode_for_pipeline,
    decode_image,
    image_size,
)


def _test_image(width: int = 64, height: int = 48) -> np.ndarray:
    """BGR with a distinct top-left corner so rotations are visible."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 1] = 80
    image[: height // 4, : width // 4] = (0, 0, 255)  # red block top-left
    return image


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buffer = cv2.imencode(ext, image, params or [])
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_decodes_formats_to_rgb(ext: str) -> None:
    data = _encode(ext, _test_image())
    assert image_size(data)[1:] == (64, 48)
    rgb = decode_image(data)
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert rgb[2, 2, 0] > 200 and rgb[2, 2, 2] < 60  # red stays red: channels are RGB


def test_lossless_webp_header() -> None:
    data = _encode(".webp", _test_image(), [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert image_size(data) == ("webp", 64, 48)


def test_grey_and_alpha_become_rgb() -> None:
    grey = decode_image(_encode(".png", _test_image()[:, :, 2]))
    assert grey.shape == (48, 64, 3)
    rgba = decode_image(_encode(".png", cv2.cvtColor(_test_image(), cv2.COLOR_BGR2BGRA)))
    assert rgba.shape == (48, 64, 3)


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    ifd_entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + ifd_entry + b"\0" * 4
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def test_exif_orientation_is_applied() -> None:
    jpeg = _encode(".jpg", _test_image(64, 48), [cv2.IMWRITE_JPEG_QUALITY, 95])
    rotated = decode_image(_with_exif_orientation(jpeg, 6))  # 6: rotate 90 deg clockwise
    assert rotated.shape == (64, 48, 3)
    # The red top-left block is now at the top-right.
    assert rotated[2, 45, 0] > 200 and rotated[2, 2, 0] < 60


def _opencv_rgb(data: bytes) -> np.ndarray:
    return cv2.cvtColor(
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
    )


def _photo_like(width: int, height: int) -> np.ndarray:
    """Smooth gradients and noise: every DCT coefficient and the chroma upsampling matter."""
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256], axis=-1)
    noise = rng.integers(0, 40, (height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    rgb = _photo_like(64, 48)
    Image.fromarray(np.concatenate([rgb, rgb[:, :, :1]], axis=2), "CMYK").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        _encode(".jpg", _photo_like(640, 480)),  # 4:2:0, what cameras and agents send
        _encode(".jpg", _photo_like(64, 48), [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111]),
        _encode(".jpg", _photo_like(64, 48)[:, :, 0]),  # grey
        _cmyk_jpeg(),  # Adobe CMYK
        _encode(".png", _photo_like(64, 48)),
        _encode(".webp", _photo_like(64, 48)),
    ],
    ids=["jpeg-420", "jpeg-444", "jpeg-grey", "jpeg-cmyk", "png", "webp"],
)
def test_pixels_are_opencvs_in_either_layout(data: bytes) -> None:
    # JPEGs without EXIF go through simplejpeg: the same libjpeg-turbo, so the same pixels.
    expected = _opencv_rgb(data)
    assert np.array_equal(decode_image(data), expected)
    rgba = decode_for_pipeline(data)
    assert rgba.shape == (*expected.shape[:2], 4)
    assert np.array_equal(rgba[:, :, :3], expected) and (rgba[:, :, 3] == 255).all()


def test_pipeline_layout_is_rgb_for_big_photos() -> None:
    side = int((PIPELINE_RGBA_MAX_MEGAPIXELS * 1e6) ** 0.5) + 8
    data = _encode(".jpg", np.zeros((side, side, 3), np.uint8))
    assert decode_for_pipeline(data).shape == (side, side, 3)


def test_exif_orientation_is_applied_in_the_pipeline_layout_too() -> None:
    jpeg = _encode(".jpg", _test_image(64, 48), [cv2.IMWRITE_JPEG_QUALITY, 95])
    rotated = decode_for_pipeline(_with_exif_orientation(jpeg, 6))
    assert rotated.shape == (64, 48, 4)
    assert rotated[2, 45, 0] > 200 and rotated[2, 2, 0] < 60


def test_a_jpeg_cut_in_half_is_refused() -> None:
    jpeg = _encode(".jpg", _photo_like(256, 256))
    for decode in (decode_image, decode_for_pipeline):
        with pytest.raises(ImageError, match="corrupt or truncated JPEG"):
            decode(jpeg[: len(jpeg) // 2])


def test_empty_bytes() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")


@pytest.mark.parametrize("data", [b"hello world", b"%PDF-1.4 ...", b"GIF89a" + b"\0" * 20])
def test_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageError, match="not a JPEG, PNG or WebP"):
        decode_image(data)


def test_corrupt_and_truncated() -> None:
    jpeg = _encode(".jpg", _test_image(256, 256))
    with pytest.raises(ImageError, match="JPEG"):
        decode_image(jpeg[:200])
    png = _encode(".png", _test_image(256, 256))
    with pytest.raises(ImageError, match="PNG"):
        decode_image(png[:40])
    broken = bytearray(png)
    broken[60:200] = b"\x00" * 140
    with pytest.raises(ImageError, match="corrupt"):
        decode_image(bytes(broken))


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_megapixel_bomb_is_refused_from_the_header() -> None:
    # 60000 x 60000 claimed in a 33-byte file: refused by size, never decoded (a decode
    # attempt would report "cannot decode" instead).
    with pytest.raises(ImageError, match=r"60000x60000 \(3600.0 MP\), over the 40 MP limit"):
        decode_image(_png_header_only(60000, 60000))


def test_limit_is_configurable() -> None:
    data = _encode(".jpg", _test_image(2000, 1000))
    assert decode_image(data, max_megapixels=2.0).shape == (1000, 2000, 3)
    with pytest.raises(ImageError, match=r"over the 1\.5 MP limit"):
        decode_image(data, max_megapixels=1.5)


def test_webp_and_jpeg_bombs_are_refused_from_the_header() -> None:
    # VP8X header claiming a 16384 x 16384 canvas (268 MP) and no image data.
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (16383).to_bytes(3, "little") * 2
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    with pytest.raises(ImageError, match=r"16384x16384 .* over the 40 MP limit"):
        decode_image(webp)
    # A JPEG whose frame header says 30000 x 30000.
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 30000, 30000, 1) + b"\x01\x11\x00"
    with pytest.raises(ImageError, match=r"30000x30000 .* over the 40 MP limit"):
        decode_image(b"\xff\xd8" + sof + b"\xff\xd9")
