"""hw-tests: checks that need the real device (camera, speaker, backlight, systemd).

Run on the Pi/Jetson with `make hw-test`; on a machine without the hardware every test skips
with the reason, never fails. Not collected by `make test` (pytest's testpaths is tests/).
Settings come from the environment:

  FACED_HW_CAMERA       camera source: v4l2:/dev/videoN or picamera2 (default: picamera2 if
                        importable, else the first /dev/video* that delivers frames)
  FACED_HW_FPS          the configured frame rate to hold (default 30)
  FACED_HW_EXPECT_FACE  1: the one-minute loop requires a face in front of the camera
  FACED_HW_URL          the running service (default http://127.0.0.1:9999)
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pytest

Frame = npt.NDArray[np.uint8]


def pytest_report_header() -> list[str]:
    return ["faced hw-tests: hardware absent here means SKIPPED, with the reason"]


def service_key() -> str | None:
    """The running service's API key: FACED_HW_KEY, else the installed one when this user
    may read it."""
    if key := os.environ.get("FACED_HW_KEY"):
        return key
    try:
        return Path("/etc/faced/api-key").read_text().strip() or None
    except OSError:
        return None


def call_service(method: str, path: str, key: str | None, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body or None) of one request to the running service (FACED_HW_URL);
    OSError when nothing answers."""
    url = os.environ.get("FACED_HW_URL", "http://127.0.0.1:9999") + path
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"null")
        except ValueError:
            return error.code, None


@pytest.fixture(scope="session")
def configured_fps() -> float:
    return float(os.environ.get("FACED_HW_FPS", "30"))


class Camera(Protocol):
    name: str

    def read(self) -> Frame: ...


@dataclass
class V4l2Camera:
    """A /dev/video* device through OpenCV's V4L2 back end."""

    name: str
    capture: Any

    def read(self) -> Frame:
        ok, frame = self.capture.read()
        if not ok or frame is None:
            raise RuntimeError(f"{self.name}: no frame")
        return np.ascontiguousarray(frame[:, :, ::-1])  # BGR -> RGB


@dataclass
class Picamera2Camera:
    """The Raspberry Pi camera through picamera2 (libcamera)."""

    name: str
    camera: Any

    def read(self) -> Frame:
        return np.ascontiguousarray(self.camera.capture_array("main")[:, :, :3])


def _open_v4l2(path: str, fps: float) -> V4l2Camera | None:
    import cv2  # noqa: PLC0415

    capture = cv2.VideoCapture(path, cv2.CAP_V4L2)
    if not capture.isOpened():
        return None
    capture.set(cv2.CAP_PROP_FPS, fps)
    ok, _ = capture.read()
    if not ok:
        capture.release()
        return None
    return V4l2Camera(name=f"v4l2:{path}", capture=capture)


def _open_picamera2(fps: float) -> Picamera2Camera | None:
    if importlib.util.find_spec("picamera2") is None:
        return None
    from picamera2 import Picamera2  # noqa: PLC0415

    if not Picamera2.global_camera_info():
        return None
    camera = Picamera2()
    config = camera.create_video_configuration(
        main={"size": (640, 480), "format": "RGB888"},
        controls={"FrameRate": fps},
    )
    camera.configure(config)
    camera.start()
    return Picamera2Camera(name="picamera2", camera=camera)


@pytest.fixture(scope="session")
def camera(configured_fps: float) -> Iterator[Camera]:
    wanted = os.environ.get("FACED_HW_CAMERA", "")
    opened: Camera | None = None
    if wanted.startswith("v4l2:"):
        opened = _open_v4l2(wanted.removeprefix("v4l2:"), configured_fps)
    elif wanted in ("", "picamera2"):
        opened = _open_picamera2(configured_fps)
    if opened is None and not wanted:
        for path in sorted(glob.glob("/dev/video*")):
            opened = _open_v4l2(path, configured_fps)
            if opened is not None:
                break
    if opened is None:
        devices = sorted(glob.glob("/dev/video*"))
        pytest.skip(
            f"no camera delivers frames (FACED_HW_CAMERA={wanted or 'auto'}; "
            f"/dev/video*: {devices or 'none'}; picamera2 "
            f"{'importable' if importlib.util.find_spec('picamera2') else 'not installed'})"
        )
    yield opened
    with contextlib.suppress(Exception):
        if isinstance(opened, V4l2Camera):
            opened.capture.release()
        elif isinstance(opened, Picamera2Camera):
            opened.camera.stop()
            opened.camera.close()


@pytest.fixture(scope="session")
def pipeline() -> Any:
    from faced.vision.models import ModelError  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    try:
        return FacePipeline.load(threads=int(os.environ.get("FACED_HW_THREADS", "2")))
    except ModelError as error:
        pytest.skip(f"models not installed: {error}")


def measure_fps(camera: Camera, seconds: float) -> tuple[int, float]:
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        camera.read()
        frames += 1
    return frames, frames / (time.perf_counter() - started)
