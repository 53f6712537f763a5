"""The decoders under an address-space limit, one input at a time (the fuzzers' child).

``python -m tests.fuzz.decoder_child LIMIT_MIB`` caps its own address space at its size
after start-up plus LIMIT_MIB (RLIMIT_AS), then reads requests from stdin: one JSON line
``{"decoder": NAME, "size": N, ...}`` followed by N bytes of input. For each it runs the
decoder and writes one JSON line: ``{"result": …}`` (what was decoded), ``{"refused": …}``
(the decoder's own clear error) or ``{"unexpected": traceback}`` (anything else, a
MemoryError of a bomb included). A crash ends the process: the parent sees it as EOF.

Why a child: a decompression bomb must show as a failure, not as a machine swapping, and
a segfault in a native decoder must not take pytest down with it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import simplejpeg

from faced.api.codec import decode_body
from faced.api.errors import ApiError
from faced.devices.wav import WavError, parse_wav
from faced.schemas.analyze_api import Base64Request
from faced.schemas.audio import VolumeUpdate
from faced.schemas.display import DisplayUpdate
from faced.schemas.face_state import AudioRequest, SpeakRequest, StateUpdate
from faced.schemas.follow import FollowUpdate
from faced.schemas.presets import ViewerConfigUpdate
from faced.vision import image_io
from faced.vision._jpeg_band import decode_band
from faced.vision.video import VideoError, VideoReader

MAX_MEGAPIXELS = image_io.DEFAULT_MAX_MEGAPIXELS
SCHEMAS: dict[str, type] = {
    "audio": AudioRequest,
    "base64": Base64Request,
    "speak": SpeakRequest,
    "state": StateUpdate,
    "volume": VolumeUpdate,
    "display": DisplayUpdate,
    "follow": FollowUpdate,
    "viewer": ViewerConfigUpdate,
}
VIDEO_FRAMES = 8
"""Frames read from each fuzzed video (a whole clip costs time, not coverage)."""


def _image(data: bytes, request: dict[str, Any]) -> dict[str, Any]:
    try:
        image_io.check_image(data, max_bytes=16 << 20, max_megapixels=MAX_MEGAPIXELS)
        kind, width, height = image_io.image_size(data)
        pixels = image_io.decode_for_pipeline(data, max_megapixels=MAX_MEGAPIXELS)
    except image_io.ImageError as exc:
        return {"refused": f"{type(exc).__name__}: {exc}"}
    # The header's size is what the limit was checked against: the decoder must agree
    # (EXIF may rotate it), or a small header could smuggle in a big image.
    return {
        "result": {
            "format": kind,
            "header": [width, height],
            "shape": list(pixels.shape),
            "dtype": str(pixels.dtype),
        }
    }


def _wav(data: bytes, request: dict[str, Any]) -> dict[str, Any]:
    try:
        pcm = parse_wav(data)
    except WavError as exc:
        return {"refused": str(exc)}
    floats = pcm.floats()
    finite = bool(floats.size == 0 or (abs(floats) <= 1.0).all())
    return {
        "result": {
            "rate": pcm.rate,
            "channels": pcm.channels,
            "frames": pcm.frames,
            "shape": list(floats.shape),
            "in_range": finite,
        }
    }


def _body(data: bytes, request: dict[str, Any]) -> dict[str, Any]:
    schema = SCHEMAS[request["schema"]]
    try:
        decoded = decode_body(
            data, request["encoding"], schema, name_the_field=request.get("name_the_field", False)
        )
    except ApiError as exc:
        return {"refused": {"status": exc.status, "error": str(exc)}}
    return {"result": msgspec.to_builtins(decoded, str_keys=True, enc_hook=repr)}


def _video(data: bytes, request: dict[str, Any]) -> dict[str, Any]:
    suffix = request.get("suffix", ".avi")
    handle, name = tempfile.mkstemp(suffix=suffix, prefix="fuzz-")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        try:
            reader = VideoReader(name, layout=request.get("layout", "rgb"))
        except VideoError as exc:
            return {"refused": str(exc)}
        shapes = []
        with reader:
            frame = None
            for _ in range(VIDEO_FRAMES):
                # After the first frame, the top-left quarter only, as a tracker asks
                # (VideoReader decodes just that band of an RGBA Motion-JPEG packet).
                band = None if frame is None else _quarter(frame.shape[1], frame.shape[0])
                frame = reader.read(frame, band)
                if frame is None:
                    break
                shapes.append(list(frame.shape))
            reader.rewind()
        return {
            "result": {
                "decoder": reader.decoder,
                "codec": reader.codec,
                "frames": shapes,
                "band_frames": reader.band_frames,
            }
        }
    finally:
        Path(name).unlink(missing_ok=True)


def _quarter(width: int, height: int) -> tuple[int, int, int, int]:
    return 0, 0, max(1, width // 2), max(1, height // 2)


def _jpeg_band(data: bytes, request: dict[str, Any]) -> dict[str, Any]:
    """A band of a (mutated) JPEG into a buffer of the size its header declares, as
    VideoReader hands a tracked frame's band to the decoder."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError as exc:
        return {"refused": f"header: {exc}"}
    if width * height > MAX_MEGAPIXELS * 1e6 or not width or not height:
        return {"refused": f"{width}x{height}"}
    out = np.zeros((height, width, 4), np.uint8)
    left, top, right, bottom = request["band"]  # shares of the frame
    x0 = min(int(left * width), width - 1)
    y0 = min(int(top * height), height - 1)
    x1 = max(x0 + 1, min(int(right * width), width))
    y1 = max(y0 + 1, min(int(bottom * height), height))
    band = (x0, y0, x1, y1)
    try:
        done = decode_band(data, out, *band)
    except ValueError as exc:
        return {"refused": str(exc)}
    return {"result": {"size": [width, height], "band": list(band), "done": list(done)}}


DECODERS = {
    "image": _image,
    "wav": _wav,
    "body": _body,
    "video": _video,
    "jpeg_band": _jpeg_band,
}


def _address_space() -> int:
    """This process's address space now, in bytes (VmSize)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def main() -> None:
    headroom = int(sys.argv[1]) << 20
    limit = _address_space() + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(json.dumps({"ready": True, "limit": limit}).encode() + b"\n")
    stdout.flush()
    while line := stdin.readline():
        request = json.loads(line)
        data = stdin.read(request["size"])
        try:
            answer = DECODERS[request["decoder"]](data, request)
        except BaseException:  # a bomb's MemoryError included: the parent reports it
            answer = {"unexpected": traceback.format_exc()}
        stdout.write(json.dumps(answer, default=repr).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    main()
