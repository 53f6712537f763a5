"""The ``gstreamer:<pipeline>`` camera source, e.g. Jetson CSI cameras
(``nvarguscamerasrc ! … ! appsink``), through OpenCV's GStreamer back end.

Owns the check that this OpenCV build has GStreamer (a clear error when not) and opening
the pipeline as given: its caps decide size and rate.
Does not own reading (faced.devices.camera.opencv) or the pipeline's text (the config's).
Why: cameras without a V4L2 device (CSI on a Jetson) come through a GStreamer pipeline.
"""

from __future__ import annotations

import cv2

from faced.devices.camera.opencv import CaptureSource
from faced.devices.camera.source import CameraError


def gstreamer_available() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class GStreamerSource(CaptureSource):
    """A GStreamer pipeline ending in ``appsink``."""

    def __init__(self, pipeline: str) -> None:
        super().__init__("gstreamer", pipeline, cv2.CAP_GSTREAMER)

    def _check(self) -> None:
        if not gstreamer_available():
            raise CameraError("this OpenCV build has no GStreamer support (cv2 GStreamer: NO)")


__all__ = ["GStreamerSource", "gstreamer_available"]
