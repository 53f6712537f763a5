"""Video files, frame by frame, for `faced analyze` and the file: camera source.

Owns reading a video file frame by frame as RGB(A), rewinding it, and its frame rate.
Does not own looping or pacing (faced.devices.camera.file) or analysis
(faced.commands.analyze).
Why: a file is the camera of tests, demos and benchmarks; its frames must be the pixels
a still image of the same JPEG gives, and cheap.

OpenCV (FFmpeg) opens and demuxes every format. A Motion-JPEG stream (the .avi of webcams,
and faced's own synthetic clips) is read as its JPEG packets and decoded by libjpeg-turbo
(simplejpeg) straight into the layout the caller wants, faster than FFmpeg's decoder plus a
colour conversion (`faced bench live`: capture -> publish). libjpeg-turbo's pixels are the
ones faced gets from the same JPEG as a still image; FFmpeg's differ from them by about one
grey level (its own IDCT and chroma upsampling). A packet libjpeg-turbo will not decode
switches the reader to OpenCV's decoding from that frame on, so no file reads worse than
with OpenCV alone.

A tracker's frame only needs the band its crop reads (``Tracker.next_footprint``): given
one, ``timed_frames`` decodes just that band of a Motion-JPEG packet (faced's optional C
extension, faced/vision/_jpeg_band.c: the same pixels there, the rest of the array left
stale) and the whole frame whenever the band cannot be decoded cleanly, so a damaged frame
goes the usual way. Without the extension (built without a compiler or libjpeg-turbo's
headers) every frame is decoded whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt
import simplejpeg

from faced.vision.image_io import DEFAULT_MAX_MEGAPIXELS, from_opencv

try:
    from faced.vision import _jpeg_band
except ImportError:  # built without it (setup.py): whole frames, as before
    _jpeg_band = None  # type: ignore[assignment]

Image = npt.NDArray[np.uint8]
Layout = Literal["rgb", "rgba"]
Band = tuple[int, int, int, int]
"""(left, top, right, bottom) pixels of a frame, right and bottom exclusive."""
BAND_DECODING: Final = _jpeg_band is not None
"""Whether this build can decode a band of a Motion-JPEG frame (faced.vision._jpeg_band)."""

_MOTION_JPEG: Final = frozenset({"MJPG", "mjpg", "AVI1", "MJPA"})
_JPEG_START: Final = b"\xff\xd8\xff"
_RAW_PACKETS: Final = -1.0  # CAP_PROP_FORMAT: FFmpeg hands out packets undecoded


class VideoError(Exception):
    """The file cannot be opened as a video, or its frames are over the megapixel limit;
    the message says which file."""


class VideoReader:
    """One video file's frames as ``layout`` (RGB or RGBA) uint8 arrays.

    Frames over ``max_megapixels`` are never decoded, as for still images: a stream that
    declares them is a ``VideoError`` at opening, and a Motion-JPEG packet that declares
    them (each JPEG carries its own size) ends the clip there: a small file must not
    inflate to gigabytes."""

    def __init__(
        self,
        path: Path | str,
        layout: Layout = "rgb",
        *,
        max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
    ) -> None:
        self.path = str(path)
        self.layout = layout
        self._channels = 4 if layout == "rgba" else 3
        self._index = 0
        self._max_pixels = max_megapixels * 1e6
        self._oversized = False
        self._capture = self._open()
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if width * height > self._max_pixels:
            self._capture.release()
            raise VideoError(
                f"{self.path}: frames of {width}x{height} ({width * height / 1e6:.1f} MP), "
                f"over the {max_megapixels:g} MP limit"
            )
        fourcc = int(self._capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        self.codec = fourcc.to_bytes(4, "little").decode("latin-1")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps: float | None = fps if math.isfinite(fps) and 0 < fps <= 1000 else None
        self.frame_count = max(0, int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        self.decoder = "opencv"
        """Who decodes the frames: libjpeg-turbo (Motion-JPEG packets) or opencv."""
        self.band_frames = 0
        """Frames decoded as a band only (``read``'s ``band``)."""
        self.skipped_frames = 0
        """Frames passed over undecoded (``skip``: resampling dropped them)."""
        if self.codec in _MOTION_JPEG and self._capture.set(cv2.CAP_PROP_FORMAT, _RAW_PACKETS):
            self.decoder = "libjpeg-turbo"

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.path)
        if not capture.isOpened():
            capture.release()
            raise VideoError(f"{self.path}: cannot open the video")
        return capture

    def read(self, out: Image | None = None, band: Band | None = None) -> Image | None:
        """The next frame, written into ``out`` when it has the frame's shape (a reused
        buffer spares a page-faulting allocation per frame); None at the end of the file
        or when no further frame can be decoded. With a ``band`` (RGBA Motion-JPEG and an
        ``out`` of the frame's shape) only that band's pixels may be new: the rest of
        ``out`` can keep the previous frame's."""
        if self._oversized:  # the clip ends at its first frame over the limit
            return None
        if self.decoder == "libjpeg-turbo":
            ok, packet = self._capture.read()
            if not ok:
                return None
            if band is not None and out is not None and self._decode_band(packet, out, band):
                self._index += 1
                self.band_frames += 1
                return out
            frame = self._decode_packet(packet, out)
            if frame is not None:
                self._index += 1
                return frame
            # FFmpeg would decode an oversized packet at its declared size: no fallback.
            if self._oversized or not self._fall_back_to_opencv():
                return None
        ok, bgr = self._capture.read()
        if not ok or bgr is None or bgr.size == 0:
            return None
        self._index += 1
        return from_opencv(bgr, rgba=self._channels == 4, out=out)

    def _decode_packet(self, packet: npt.NDArray[Any], out: Image | None) -> Image | None:
        data = packet.tobytes()
        if not data.startswith(_JPEG_START):
            return None
        colorspace = "RGBA" if self._channels == 4 else "RGB"
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            if width * height > self._max_pixels:
                self._oversized = True
                return None
            shape = (height, width, self._channels)
            buffer = out if out is not None and out.shape == shape else None
            return cast(Image, simplejpeg.decode_jpeg(data, colorspace=colorspace, buffer=buffer))
        except ValueError:
            return None

    def skip(self) -> bool:
        """Pass over the next frame without decoding it (resampling drops it); False at the
        end of the file. A Motion-JPEG packet is only read, and its header checked against
        the megapixel limit (over it ends the clip, as for a decoded frame); with OpenCV's
        decoding the frame is demuxed and decoded but not converted."""
        if self._oversized:
            return False
        if self.decoder == "libjpeg-turbo":
            ok, packet = self._capture.read()
            if not ok:
                return False
            try:
                height, width, _, _ = simplejpeg.decode_jpeg_header(packet.tobytes())
            except ValueError:  # damaged: it is not used, so it costs nothing here
                width = height = 0
            if width * height > self._max_pixels:
                self._oversized = True
                return False
        elif not self._capture.grab():
            return False
        self._index += 1
        self.skipped_frames += 1
        return True

    def _decode_band(self, packet: npt.NDArray[Any], out: Image, band: Band) -> bool:
        """Only ``band`` of the packet into ``out``; False when the extension is missing,
        the layout is not RGBA, or the packet does not decode cleanly into ``out``'s size
        (corrupt, another size, not a JPEG): the caller then decodes it whole."""
        if _jpeg_band is None or self._channels != 4 or not out.flags.c_contiguous:
            return False
        try:
            _jpeg_band.decode_band(packet, out, *band)
        except ValueError:
            return False
        return True

    def _fall_back_to_opencv(self) -> bool:
        """Reopen the file for OpenCV's decoding at the current frame; False when it can no
        longer be opened (it was truncated or removed under us): no further frame."""
        self._capture.release()
        self.decoder = "opencv"
        try:
            self._capture = self._open()
        except VideoError:
            self._capture = cv2.VideoCapture()  # closed: reads fail, rewind says False
            return False
        if self._index:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, self._index)
        return True

    def rewind(self) -> bool:
        """Back to the first frame (for looping); False when the file cannot seek."""
        self._index = 0
        self._oversized = False
        return bool(self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0))

    def close(self) -> None:
        self._capture.release()

    def timed_frames(
        self, every_s: float = 0.0, band: Callable[[], Band | None] | None = None
    ) -> Iterator[tuple[int, int, Image]]:
        """(index, timestamp ms, frame) for each frame, timestamped from the file's frame
        rate as a MediaPipe VIDEO-mode user does (``floor(index * 1000 / fps)``, 30 fps when
        the file has none): what `faced analyze` and the jobs (faced.jobs) feed a tracker.
        ``every_s`` > 0 yields only the first frame of each such step (resampling down);
        the others are passed over undecoded (``skip``). ``band``, asked before each frame,
        says which pixels its consumer will read (None: all; a tracker's
        ``next_footprint``): only those need be decoded. The array is reused for the next
        frame: copy it to keep it."""
        fps = self.fps or 30.0
        index = 0
        frame = None
        last_step = -1
        while True:
            step = math.floor(index / fps / every_s + 1e-9) if every_s > 0 else index
            if step == last_step:  # resampled away: never decoded
                if not self.skip():
                    return
                index += 1
                continue
            # Decoding into the previous frame's array spares a 1 MB allocation per frame.
            frame = self.read(frame, band() if band is not None else None)
            if frame is None:
                return
            last_step = step
            yield index, math.floor(index * 1000 / fps), frame
            index += 1

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
