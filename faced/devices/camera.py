"""Cameras: a small port (open / read / close) for each source, and the capture thread.

Owner: camera sources (issue 5). ``open_source(config)`` turns ``camera.source`` into a
``Source``:

* ``picamera2`` — Raspberry Pi camera modules; the library is imported only when this
  source opens (it exists only on the Pi); each request's array is copied and the request
  released before the frame leaves the capture thread.
* ``v4l2:/dev/videoN`` — USB webcams through OpenCV's V4L2 back end, MJPEG asked for
  (YUYV is the driver's fallback), with the configured resolution and frame rate.
* ``gstreamer:<pipeline>`` — e.g. Jetson CSI cameras (``nvarguscamerasrc ! … ! appsink``);
  a clear error when this OpenCV was built without GStreamer.
* ``file:<video or image>`` — looped forever, paced at the video's own frame rate.
* ``demo`` — a moving face clip rendered on the fly from a photograph (faced.vision.synthetic).
* ``none`` — no camera: ``open_source`` returns None.

``Camera`` runs one source in its own thread: it keeps only the latest frame (no backlog),
applies rotation and mirroring, honours the fps cap, and when the source fails or vanishes
it reports ``error (reason)``, closes it and reopens it with backoff while the rest of the
daemon keeps serving; recovery is logged. Frames are RGB ``uint8`` arrays owned by the
``Frame`` (copied out of any driver buffer) and are never written to disk.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, cast

import cv2
import numpy as np
import numpy.typing as npt

from faced.config import CameraConfig
from faced.devices.retry import Backoff, Health
from faced.vision.image_io import from_opencv
from faced.vision.video import VideoError, VideoReader

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]

VIDEO_SUFFIXES: Final = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mjpeg"})
SCHEMES: Final = ("none", "demo", "file", "v4l2", "gstreamer", "picamera2")
BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 10.0


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


# --- sources ------------------------------------------------------------------------------


def _bgr_to_rgb(frame: Any, what: str) -> Image:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise CameraError(f"{what} returned no usable frame")
    try:
        return from_opencv(frame)
    except ValueError as exc:
        raise CameraError(f"{what} returned {exc}") from None


class FileSource:
    """A video file looped forever at its own frame rate, or a still image repeated."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.name = f"file:{path}"
        self._default_fps = fps
        self._video: VideoReader | None = None
        self._still: Image | None = None
        self._fps: float | None = None

    @property
    def pace_fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        if not self.path.is_file():
            raise CameraError(f"{self.path}: no such file")
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            still = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
            if still is None:
                raise CameraError(f"{self.path}: not a readable image or video")
            self._still = _bgr_to_rgb(still, self.name)
            self._fps = self._default_fps
            return
        try:
            video = VideoReader(self.path)
        except VideoError as exc:
            raise CameraError(str(exc)) from None
        fps = video.fps
        self._fps = fps if fps is not None and fps <= 240 else self._default_fps
        self._video = video

    def read(self) -> Image:
        if self._still is not None:
            return self._still.copy()
        video = self._video
        if video is None:
            raise CameraError("not open")
        frame = video.read()
        if frame is None:
            # End of the clip: loop. A file that vanished or was truncated fails here too,
            # and then reopening it (by the capture loop) says what is wrong.
            if not self.path.is_file():
                raise CameraError(f"{self.path}: the file vanished")
            video.rewind()
            frame = video.read()
            if frame is None:
                raise CameraError(f"{self.path}: no frame could be decoded")
        return frame

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
        self._video = None
        self._still = None


class DemoSource:
    """A photograph drifting, zooming and tilting like a person at a screen, rendered live
    (the photograph is the verified one faced.devices.demo_photo installs with the models)."""

    name = "demo"

    def __init__(self, model_dir: Path, size: tuple[int, int], fps: float) -> None:
        self.model_dir = model_dir
        self._size = size
        self._fps = fps
        self._photo: Image | None = None
        self._index = 0

    @property
    def pace_fps(self) -> float | None:
        return self._fps

    def open(self) -> None:
        from faced.devices.demo_photo import DemoPhotoError, read_verified  # noqa: PLC0415

        try:
            data = read_verified(self.model_dir)
        except DemoPhotoError as exc:
            raise CameraError(str(exc)) from None
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise CameraError("the demo photo cannot be decoded")
        self._photo = _bgr_to_rgb(bgr, self.name)

    def read(self) -> Image:
        from faced.vision.synthetic import render_frame  # noqa: PLC0415  (only for demo)

        if self._photo is None:
            raise CameraError("not open")
        frame = render_frame(self._photo, self._index, self._size)
        self._index += 1
        return frame

    def close(self) -> None:
        self._photo = None


class CaptureSource:
    """A live camera through cv2.VideoCapture (V4L2 webcams, GStreamer pipelines)."""

    def __init__(
        self,
        name: str,
        target: str,
        api: int,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> None:
        self.name = name
        self._target = target
        self._api = api
        self._size = size
        self._fps = fps
        self._capture: cv2.VideoCapture | None = None

    @property
    def pace_fps(self) -> float | None:
        return None

    def open(self) -> None:
        if self._api == cv2.CAP_GSTREAMER and not gstreamer_available():
            raise CameraError("this OpenCV build has no GStreamer support (cv2 GStreamer: NO)")
        if self._api == cv2.CAP_V4L2 and not Path(self._target).exists():
            raise CameraError(f"{self._target}: no such device")
        capture = cv2.VideoCapture(self._target, self._api)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"{self._target}: cannot open")
        if self._api == cv2.CAP_V4L2:
            # MJPEG first: USB 2 webcams deliver 640x480@30 and above only compressed;
            # the driver keeps YUYV when MJPEG is not offered.
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the latest frame, not a backlog
        if self._size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self._size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self._size[1])
        if self._fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self._fps)
        self._capture = capture

    def read(self) -> Image:
        capture = self._capture
        if capture is None:
            raise CameraError("not open")
        ok, frame = capture.read()
        if not ok:
            raise CameraError(f"{self._target}: read failed (unplugged?)")
        return _bgr_to_rgb(frame, self.name)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._capture = None


class Picamera2Source:
    """A Raspberry Pi camera module through picamera2 (imported here, only on the Pi)."""

    name = "picamera2"

    def __init__(self, size: tuple[int, int], fps: float) -> None:
        self._size = size
        self._fps = fps
        self._camera: Any = None

    @property
    def pace_fps(self) -> float | None:
        return None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415
        except ImportError:
            raise CameraError(
                "picamera2 is not installed (apt install python3-picamera2)"
            ) from None
        try:
            camera = Picamera2()
            # RGB888 in libcamera's naming is B,G,R in memory: what OpenCV calls BGR.
            config = camera.create_video_configuration(
                main={"size": self._size, "format": "RGB888"},
                controls={"FrameRate": self._fps},
                buffer_count=2,
            )
            camera.configure(config)
            camera.start()
        except Exception as exc:  # libcamera raises a variety of errors for a missing camera
            raise CameraError(f"picamera2: {exc}") from None
        self._camera = camera

    def read(self) -> Image:
        camera = self._camera
        if camera is None:
            raise CameraError("not open")
        try:
            request = camera.capture_request()
        except Exception as exc:
            raise CameraError(f"picamera2: {exc}") from None
        try:
            # The array views the request's DMA buffer: convert (a copy) before release.
            bgr = request.make_array("main")
            return _bgr_to_rgb(bgr, self.name)
        finally:
            request.release()

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
                camera.close()
            except Exception:
                log.warning("picamera2 did not close cleanly", exc_info=True)


def gstreamer_available() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def check_source(source: str) -> None:
    """ValueError naming what is wrong with a ``camera.source`` value."""
    scheme, _, rest = source.partition(":")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown camera source; expected one of {', '.join(SCHEMES)}")
    if scheme in ("none", "demo", "picamera2") and rest:
        raise ValueError(f"{scheme} takes no argument")
    if scheme in ("file", "gstreamer") and not rest:
        raise ValueError(f"{scheme}: needs a {'path' if scheme == 'file' else 'pipeline'}")
    if scheme == "v4l2" and not rest.startswith("/dev/"):
        raise ValueError("v4l2: needs a device path, e.g. v4l2:/dev/video0")


def open_source(config: CameraConfig, model_dir: Path) -> Source | None:
    """The back end ``config.source`` names (not yet opened); None for ``none``."""
    check_source(config.source)
    scheme, _, rest = config.source.partition(":")
    size = (config.width, config.height)
    if scheme == "none":
        return None
    if scheme == "demo":
        return DemoSource(model_dir, size, config.fps)
    if scheme == "file":
        return FileSource(Path(rest).expanduser(), config.fps)
    if scheme == "v4l2":
        return CaptureSource(config.source, rest, cv2.CAP_V4L2, size=size, fps=config.fps)
    if scheme == "gstreamer":
        return CaptureSource("gstreamer", rest, cv2.CAP_GSTREAMER)
    return Picamera2Source(size, config.fps)


# --- the capture thread ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    """RGB, H x W x 3; owned by this frame — read it, never write it."""
    index: int
    """Counts frames since the camera started (gaps: frames skipped by the fps cap)."""
    captured: float
    """time.monotonic() when the frame was read."""
    stream: int
    """Increments each time the source is (re)opened: a new stream for the tracker."""


_ROTATIONS: Final = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


class Camera:
    """Runs one source in a daemon thread; the latest frame and a status for /health."""

    def __init__(
        self,
        source: Source,
        *,
        fps: float,
        rotation: int = 0,
        mirror: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._min_interval = 1.0 / fps
        self._rotation = rotation
        self._mirror = mirror
        self._clock = clock
        self._stop = threading.Event()
        self._new_frame = threading.Condition()
        self._thread: threading.Thread | None = None
        self.latest: Frame | None = None
        self.health = Health()
        self.frames = 0
        self._stream = 0

    @property
    def status(self) -> str:
        return self.health.status

    @property
    def error(self) -> str | None:
        return self.health.error

    @property
    def reopens(self) -> int:
        """Recoveries: opens that followed a failure."""
        return self.health.reopens

    # --- the consumer's side -------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The /health entry (plain attribute reads: safe from the event loop)."""
        report: dict[str, Any] = {"status": self.status, "source": self.source.name}
        if self.error is not None:
            report["error"] = self.error
        report["frames"] = self.frames
        report["reopens"] = self.reopens
        return report

    def wait_frame(self, after: int, timeout: float) -> Frame | None:
        """The latest frame newer than index ``after``, waiting up to ``timeout`` (blocking:
        call from a worker thread)."""
        with self._new_frame:
            self._new_frame.wait_for(
                lambda: (
                    (self.latest is not None and self.latest.index > after) or self._stop.is_set()
                ),
                timeout,
            )
            frame = self.latest
        return frame if frame is not None and frame.index > after else None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread = thread
        thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the source (blocking: call from a worker thread)."""
        self._stop.set()
        with self._new_frame:
            self._new_frame.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.health.status = "off"

    # --- the capture thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        failed_since: float | None = None
        while not self._stop.is_set():
            try:
                self.source.open()
            except CameraError as exc:
                failed_since = self._failed(str(exc), failed_since)
                self._stop.wait(backoff.next())
                continue
            self._stream += 1
            if failed_since is not None:
                self.health.reopens += 1
                log.info(
                    "camera %s recovered after %.1f s",
                    self.source.name,
                    self._clock() - failed_since,
                )
            else:
                log.info("camera %s open", self.source.name)
            failed_since = None
            try:
                self._capture()
            except CameraError as exc:
                # It delivered frames: the source worked, so the first retry comes soon.
                failed_since = self._failed(str(exc), None)
                backoff.reset()
            except Exception as exc:  # a driver bug must not kill the thread for good
                log.exception("camera %s: unexpected failure", self.source.name)
                failed_since = self._failed(f"{type(exc).__name__}: {exc}", None)
            finally:
                self._close_source()
            if failed_since is not None and not self._stop.is_set():
                self._stop.wait(backoff.delay_s)
        self._close_source()

    def _failed(self, reason: str, since: float | None) -> float:
        if self.health.failed(reason):
            log.warning("camera %s: %s; retrying", self.source.name, reason)
        return since if since is not None else self._clock()

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.warning("camera %s did not close cleanly", self.source.name, exc_info=True)

    def _capture(self) -> None:
        pace = self.source.pace_fps
        # A paced source (file, demo) is read at its own rate capped by camera.fps; a live
        # camera is read as fast as it delivers (so its driver holds no stale frames) and
        # frames beyond the cap are dropped.
        interval = max(self._min_interval, 1.0 / pace) if pace else self._min_interval
        next_due = self._clock()
        last_kept = -math.inf
        while not self._stop.is_set():
            if pace:
                delay = next_due - self._clock()
                if delay > 0 and self._stop.wait(delay):
                    return
                next_due = max(next_due + interval, self._clock() - interval)
            image = self.source.read()
            now = self._clock()
            self.health.working()
            if not pace and now - last_kept < self._min_interval * 0.9:
                continue
            last_kept = now
            self.frames += 1
            frame = Frame(self._orient(image), self.frames, now, self._stream)
            with self._new_frame:
                self.latest = frame
                self._new_frame.notify_all()

    def _orient(self, image: Image) -> Image:
        if self._rotation:
            image = cast(Image, cv2.rotate(image, _ROTATIONS[self._rotation]))
        if self._mirror:
            image = cast(Image, cv2.flip(image, 1))
        return image


__all__ = [
    "SCHEMES",
    "Camera",
    "CameraError",
    "CaptureSource",
    "DemoSource",
    "FileSource",
    "Frame",
    "Picamera2Source",
    "Source",
    "check_source",
    "gstreamer_available",
    "open_source",
]
