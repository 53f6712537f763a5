"""``camera.source``: checking the value and making the back end it names.

Owns the schemes (``none``, ``demo``, ``file:``, ``v4l2:``, ``gstreamer:``, ``picamera2``),
the check the config runs on the value, and ``open_source`` (the unopened back end).
Does not own any back end's behaviour (one module each) or running it (the capture thread).
Why: the config refuses a bad value at startup with the same words ``open_source`` relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from faced.config import CameraConfig
from faced.devices.camera.demo import DemoSource
from faced.devices.camera.file import FileSource
from faced.devices.camera.gstreamer import GStreamerSource
from faced.devices.camera.picamera import Picamera2Source
from faced.devices.camera.source import Source
from faced.devices.camera.v4l2 import V4l2Source

SCHEMES: Final = ("none", "demo", "file", "v4l2", "gstreamer", "picamera2")


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
        return V4l2Source(rest, size, config.fps)
    if scheme == "gstreamer":
        return GStreamerSource(rest)
    return Picamera2Source(size, config.fps)


__all__ = ["SCHEMES", "check_source", "open_source"]
