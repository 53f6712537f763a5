"""POST/GET/DELETE /api/tracking/calibrate through the real daemon.

A ``file:`` camera plays a still clip of a real photograph; the real models track it. The
neutral measured on it makes the same photograph's calibrated scores read near zero;
the calibration survives a restart (the state directory), is refused when nobody or two
people are in view, and bad bodies are 400s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from faced.keys import LIVE_KEY
from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.synthetic import Motion, write_clip
from tests import data
from tests.helpers import until

pytestmark = pytest.mark.slow

STILL = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
PATH = "/api/tracking/calibrate"
KEY = "calibration-key"
# A resting mouth and brows, eyes looking aside (eyeLookOutRight ~0.9 raw). The tongue-out
# photo is no neutral: its raised brows (~0.8 raw) jitter by ±0.03 between frames, which
# (raw - n) / (1 - n) scales by 1 / 0.2 to ±0.15.
NEUTRAL_PHOTO = "lenna.png"
SETTLE_FRAMES = 15


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("calibration-clips")
    return {
        "face": write_clip(data.load_rgb(NEUTRAL_PHOTO), directory / "face.avi", 30, motion=STILL),
        "nobody": write_clip(data.load_rgb(data.NO_FACE_PHOTO), directory / "cat.avi", 30),
        "two": write_clip(
            data.load_rgb("breakingbad.jpg"), directory / "two.avi", 30, motion=STILL
        ),
    }


async def _client(faced_client: Any, clip: Path, state: Path, **sections: Any) -> Any:
    client = await faced_client(
        camera={"source": f"file:{clip}"}, server={"state_dir": str(state)}, **sections
    )
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.latest is not None, what="a tracking result")
    return client


async def _latest(client: Any) -> dict[str, Any]:
    response = await client.get("/api/tracking")
    assert response.status == 200
    result: dict[str, Any] = await response.json()
    return result


async def test_calibrate_show_remove_and_survive_a_restart(faced_client, clips, tmp_path) -> None:
    state = tmp_path / "state"
    client = await _client(faced_client, clips["face"], state)
    live = client.app[LIVE_KEY].live
    await until(lambda: live.processed >= SETTLE_FRAMES, what="tracking settled")
    raw = await _latest(client)
    assert "calibrated" not in raw  # False is left out: nothing changes without one
    assert max(raw["blendshapes"].values()) > 0.3  # a resting face is not all zeros

    response = await client.get(PATH)
    assert response.status == 200
    assert await response.json() == {"calibrated": False, "neutral": None}

    response = await client.post(PATH, json={"seconds": 1})
    assert response.status == 200, await response.text()
    neutral = await response.json()
    assert set(neutral["blendshapes"]) == set(ARKIT_NAMES)
    assert neutral["seconds"] == 1 and neutral["frames"] >= 3
    # The neutral is this face at rest: the raw scores it was measured from.
    for name in ("eyeLookOutRight", "jawOpen"):
        assert neutral["blendshapes"][name] == pytest.approx(raw["blendshapes"][name], abs=0.1)

    # From now on the same face reads near zero on every blendshape.
    await until(lambda: live.latest.calibrated, what="a calibrated result")
    result = await _latest(client)
    assert result["calibrated"] is True
    assert set(result["blendshapes"]) == set(ARKIT_NAMES)
    assert max(result["blendshapes"].values()) < 0.1, result["blendshapes"]
    assert result["faces"][0]["blendshapes"] == result["blendshapes"]
    emotion = await (await client.get("/api/emotion_state")).json()
    assert max(emotion["blendshapes"].values()) < 0.1
    assert await asyncio.to_thread((state / "calibration.json").is_file)

    response = await client.get(PATH)
    shown = await response.json()
    assert shown["calibrated"] is True and shown["neutral"] == neutral
    await client.close()

    # A restart (a new daemon on the same state directory) calibrates from the start.
    client = await _client(faced_client, clips["face"], state)
    live = client.app[LIVE_KEY].live
    assert (await (await client.get(PATH)).json())["neutral"] == neutral
    # The first frames differ from the rest (the detector's region, then the tracked one
    # and the smoother settling), as they did before the neutral was measured.
    await until(lambda: live.processed >= SETTLE_FRAMES, what="tracking settled")
    result = await _latest(client)
    assert result["calibrated"] is True and max(result["blendshapes"].values()) < 0.1

    response = await client.delete(PATH)
    assert response.status == 200
    assert await response.json() == {"calibrated": False, "neutral": None}
    assert not await asyncio.to_thread((state / "calibration.json").exists)
    await until(lambda: not live.latest.calibrated, what="a raw result")
    result = await _latest(client)
    assert "calibrated" not in result and max(result["blendshapes"].values()) > 0.3


async def test_nobody_in_view_is_refused(faced_client, clips, tmp_path) -> None:
    client = await _client(faced_client, clips["nobody"], tmp_path)
    response = await client.post(PATH, json={})
    assert response.status == 409
    assert "nobody" in (await response.json())["error"]
    assert (await (await client.get(PATH)).json())["calibrated"] is False
    assert not await asyncio.to_thread((tmp_path / "calibration.json").exists)


async def test_two_people_in_view_is_refused(faced_client, clips, tmp_path) -> None:
    client = await _client(faced_client, clips["two"], tmp_path, vision={"num_faces": 2})
    live = client.app[LIVE_KEY].live
    await until(lambda: len(live.latest.faces) == 2, what="two faces")
    response = await client.post(PATH, json={"seconds": 0.5})
    assert response.status == 409
    assert "more than one person" in (await response.json())["error"]
    assert (await (await client.get(PATH)).json())["calibrated"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": 10.5}, "seconds"),
        ({"seconds": "two"}, "seconds"),
        ({"seconds": 2, "frames": 3}, "frames"),
        ([2], "object"),
    ],
)
async def test_bad_bodies_are_400(faced_client, clips, tmp_path, body, expected) -> None:
    client = await _client(faced_client, clips["face"], tmp_path)
    response = await client.post(PATH, json=body)
    assert response.status == 400
    assert expected in (await response.json())["error"]
    response = await client.post(
        PATH, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400


async def test_without_a_camera_it_is_503(faced_client, tmp_path) -> None:
    client = await faced_client(server={"state_dir": str(tmp_path)})
    response = await client.post(PATH)
    assert response.status == 503
    assert "no camera" in (await response.json())["error"]


async def test_it_is_private(faced_client, clips, tmp_path) -> None:
    client = await _client(faced_client, clips["face"], tmp_path, auth={"api_key": KEY})
    for method in ("get", "post", "delete"):
        response = await getattr(client, method)(PATH)
        assert response.status == 401, method
    response = await client.get(PATH, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status == 200
