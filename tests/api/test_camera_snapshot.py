"""GET /api/camera/snapshot through the real daemon: off by default, the key, a real JPEG.

The camera is the ``file:`` source playing a clip written from a test photograph; tracking
is off (a snapshot needs only the camera), so no model runs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.keys import LIVE_KEY
from faced.vision.synthetic import write_clip
from tests import data
from tests.helpers import until

KEY = "snap-key"


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb("tongue.jpg"), directory / "face.avi", 30)


def _camera(clip: Path, **extra: object) -> dict[str, object]:
    return {"source": f"file:{clip}", "tracking": False, **extra}


async def _first_frame(client) -> None:
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.latest is not None, what="a camera frame")


async def test_snapshots_are_off_by_default(faced_client, face_clip) -> None:
    client = await faced_client(camera=_camera(face_clip))
    await _first_frame(client)
    response = await client.get("/api/camera/snapshot")
    assert response.status == 403
    assert "camera.snapshots = true" in (await response.json())["error"]


async def test_snapshot_is_the_current_frame_as_jpeg(faced_client, face_clip) -> None:
    client = await faced_client(camera=_camera(face_clip, snapshots=True))
    await _first_frame(client)
    response = await client.get("/api/camera/snapshot")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.read()
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    latest = client.app[LIVE_KEY].camera.latest
    assert image is not None and image.shape == latest.image.shape


async def test_no_camera_is_503(faced_client) -> None:
    client = await faced_client(camera={"source": "none", "snapshots": True})
    response = await client.get("/api/camera/snapshot")
    assert response.status == 503
    assert "no camera" in (await response.json())["error"]


async def test_snapshot_needs_the_key(faced_client, face_clip) -> None:
    client = await faced_client(camera=_camera(face_clip, snapshots=True), auth={"api_key": KEY})
    await _first_frame(client)
    assert (await client.get("/api/camera/snapshot")).status == 401
    assert (await client.get("/api/camera/snapshot", headers={"X-API-Key": "no"})).status == 403
    response = await client.get("/api/camera/snapshot", headers={"X-API-Key": KEY})
    assert response.status == 200 and (await response.read())[:2] == b"\xff\xd8"


async def test_without_a_key_only_loopback_gets_a_snapshot(faced_client, face_clip) -> None:
    client = await faced_client(
        camera=_camera(face_clip, snapshots=True), server={"trusted_proxies": ["127.0.0.1/32"]}
    )
    await _first_frame(client)
    response = await client.get("/api/camera/snapshot", headers={"X-Forwarded-For": "192.0.2.7"})
    assert response.status == 403
    assert "auth.api_key" in (await response.json())["error"]
    assert (await client.get("/api/camera/snapshot")).status == 200
