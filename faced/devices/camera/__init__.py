"""Cameras: one small port (open / read / close) per source, and the capture thread.

Owns nothing itself: it names the package's parts and re-exports them, as picamera2 does.
``open_source(config)`` (sources) turns ``camera.source`` into a ``Source``:

* ``picamera2`` (picamera) — Raspberry Pi camera modules; picamera2 is imported only when
  this source opens.
* ``v4l2:/dev/videoN`` (v4l2) — USB webcams through OpenCV's V4L2 back end, MJPEG asked for.
* ``gstreamer:<pipeline>`` (gstreamer) — e.g. Jetson CSI cameras; a clear error when this
  OpenCV was built without GStreamer.
* ``file:<video or image>`` (file) — looped forever, paced at the video's own frame rate.
* ``demo`` (demo) — a moving face rendered on the fly from a photograph.
* ``none`` — no camera: ``open_source`` returns None.

``Camera`` (capture) runs one source in its own thread, keeps the latest frame and reopens
a failing source with backoff. The OpenCV sources share ``CaptureSource`` (opencv); the
port, its error and the frame conversion are in ``source``.
"""

from faced.devices.camera.capture import Camera, Frame
from faced.devices.camera.demo import DemoSource
from faced.devices.camera.file import VIDEO_SUFFIXES, FileSource
from faced.devices.camera.gstreamer import GStreamerSource, gstreamer_available
from faced.devices.camera.opencv import CaptureSource
from faced.devices.camera.picamera import Picamera2Source
from faced.devices.camera.source import CameraError, Image, Source, rgb_frame
from faced.devices.camera.sources import SCHEMES, check_source, open_source
from faced.devices.camera.v4l2 import V4l2Source

__all__ = [
    "SCHEMES",
    "VIDEO_SUFFIXES",
    "Camera",
    "CameraError",
    "CaptureSource",
    "DemoSource",
    "FileSource",
    "Frame",
    "GStreamerSource",
    "Image",
    "Picamera2Source",
    "Source",
    "V4l2Source",
    "check_source",
    "gstreamer_available",
    "open_source",
    "rgb_frame",
]
