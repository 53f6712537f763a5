"""Blendshapes only on demand: live tracking runs the blendshape model while a reader needs
the scores, /health says so, and one-off analysis skips it when asked.

The real daemon on loopback (``faced_client``) with a ``file:`` camera of a face clip, the
real models, real HTTP/WebSocket clients; ``Demand`` itself with an injected clock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from faced.cli import main
from faced.demand import Demand
from faced.keys import LIVE_KEY
from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.synthetic import write_clip
from tests import data
from tests.helpers import until


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb("tongue.jpg"), directory / "face.avi", 60)


async def _health(client: Any) -> dict[str, Any]:
    response = await client.get("/health")
    assert response.status == 200
    report: dict[str, Any] = (await response.json())["blendshapes"]
    return report


async def _running(client: Any) -> bool:
    return bool((await _health(client))["running"])


async def _latest_has_blendshapes(client: Any) -> bool | None:
    """Whether the newest face result carries blendshapes (None: no face in it)."""
    response = await client.get("/api/tracking?blendshapes=false")
    assert response.status == 200
    body = await response.json()
    if not body["face_found"]:
        return None
    return body["blendshapes"] is not None and "blendshapes" in body["faces"][0]


async def _until_async(check: Any, seconds: float = 10.0) -> None:
    import asyncio  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_no_reader_no_blendshapes_a_socket_switches_them_on_and_off(
    faced_client, face_clip
) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.latest is not None and live.latest.face_found)
    assert await _health(client) == {"running": False, "consumers": []}
    assert await _latest_has_blendshapes(client) is False

    async with client.ws_connect("/ws/tracking") as ws:
        assert await _health(client) == {"running": True, "consumers": ["tracking socket"]}
        # The newest result when the socket joined may predate it; the next ones have them.
        for _ in range(30):
            message = await ws.receive(timeout=10)
            assert message.type == WSMsgType.TEXT
            result = json.loads(message.data)
            if result["face_found"] and result["blendshapes"] is not None:
                break
        else:
            raise AssertionError("no result with blendshapes while a socket asked for them")
        assert set(result["blendshapes"]) == set(ARKIT_NAMES) and len(ARKIT_NAMES) == 52
        assert set(result["faces"][0]["blendshapes"]) == set(ARKIT_NAMES)

    await _until_async(_off(client))
    # The frames after it closed are tracked without the model again.
    await _until_async(_without(client))


def _off(client: Any) -> Any:
    async def check() -> bool:
        return await _health(client) == {"running": False, "consumers": []}

    return check


def _without(client: Any) -> Any:
    async def check() -> bool:
        return await _latest_has_blendshapes(client) is False

    return check


async def test_a_socket_that_wants_other_fields_does_not_ask(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with client.ws_connect("/ws/tracking?fields=head,bbox") as ws:
        await ws.receive(timeout=10)
        assert not await _running(client)
    async with client.ws_connect("/ws/tracking?fields=faces") as ws:
        await ws.receive(timeout=10)
        assert await _health(client) == {"running": True, "consumers": ["tracking socket"]}


async def test_emotion_state_reads_have_them_at_once_and_keep_them_on(
    faced_client, face_clip
) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.latest is not None and live.latest.face_found)
    assert not await _running(client)
    response = await client.get("/api/emotion_state")
    assert response.status == 200
    state = await response.json()
    # The first read after a quiet time waits for the next frame, which has them.
    assert state["face_found"] and set(state["blendshapes"]) == set(ARKIT_NAMES)
    report = await _health(client)
    assert report["running"] and report["consumers"] == ["emotion_state"]
    # A plain /api/tracking read asks too; ?blendshapes=false does not.
    response = await client.get("/api/tracking")
    assert (await response.json())["blendshapes"] is not None
    assert (await _health(client))["consumers"] == ["emotion_state", "tracking reader"]


async def test_mirror_mode_and_person_events_need_them(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    assert not await _running(client)
    response = await client.put("/api/follow", json={"mode": "mirror"})
    assert response.status == 200, await response.text()
    assert await _health(client) == {"running": True, "consumers": ["mirror"]}
    response = await client.put("/api/follow", json={"mode": "follow"})
    assert response.status == 200
    assert not await _running(client)  # following the head needs only the box
    async with client.get("/api/person/events") as events:
        assert events.status == 200
        await _until_async(lambda: _running(client))
        assert (await _health(client))["consumers"] == ["person events"]
    await _until_async(_off(client))


async def test_always_runs_them(faced_client, face_clip) -> None:
    client = await faced_client(
        camera={"source": f"file:{face_clip}"}, vision={"blendshapes": "always"}
    )
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.latest is not None and live.latest.face_found)
    assert await _health(client) == {"running": True, "consumers": ["always"]}
    assert await _latest_has_blendshapes(client)


async def test_no_camera_no_report(faced_client) -> None:
    client = await faced_client()
    response = await client.get("/health")
    assert "blendshapes" not in await response.json()


@pytest.fixture(scope="module")
def face_jpeg() -> bytes:
    return (data.DATA_DIR / "tongue.jpg").read_bytes()


async def test_analyze_without_blendshapes(faced_client, face_jpeg) -> None:
    client = await faced_client()
    image = face_jpeg
    headers = {"Content-Type": "image/jpeg"}
    response = await client.post("/v1/analyze?blendshapes=false", data=image, headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["face_found"] and body["blendshapes"] is None
    assert "blendshapes" not in body["faces"][0] and body["head"] is not None
    response = await client.post("/v1/analyze", data=image, headers=headers)
    assert set((await response.json())["blendshapes"]) == set(ARKIT_NAMES)
    response = await client.post("/v1/analyze?blendshapes=maybe", data=image, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"] == "blendshapes must be true or false, got 'maybe'"


def test_cli_without_blendshapes(capsys: pytest.CaptureFixture[str]) -> None:
    path = data.DATA_DIR / "tongue.jpg"
    assert main(["analyze", str(path), "--jsonl", "--no-blendshapes"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["face_found"] and doc["blendshapes"] is None and doc["head"] is not None


def test_demand_holds_touches_and_watches() -> None:
    now = [100.0]
    demand = Demand(clock=lambda: now[0])
    assert not demand.needed() and demand.consumers() == []
    with demand.hold("job"), demand.hold("job"):
        assert demand.consumers() == ["job"]
    assert not demand.needed()
    demand.touch("reader", 10)
    now[0] += 9.9
    assert demand.needed() and demand.consumers() == ["reader"]
    now[0] += 0.2
    assert not demand.needed() and demand.consumers() == []
    mode = ["off"]
    demand.watch("mirror", lambda: mode[0] == "mirror")
    assert not demand.needed()
    mode[0] = "mirror"
    assert demand.needed() and demand.consumers() == ["mirror"]
    demand.unwatch("mirror")
    assert not demand.needed()
    assert Demand(always=True).consumers() == ["always"]
