"""GET /api/person, its Server-Sent Events, /ws/tracking?events=1 and the history's person
entries, through the real daemon.

A ``file:`` camera plays a clip of a real photograph (a face looking at the camera) that
comes and goes; the real models track it and faced.perception runs on every result. Real
HTTP, SSE and WebSocket clients read what an agent would; viewers never see perception.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import cv2
import msgspec
import numpy as np
import pytest
from aiohttp import WSMsgType

from faced.schemas.person import PersonEvent, PersonSummary
from faced.vision.synthetic import BACKGROUND_RGB, DEFAULT_SIZE, Motion, render_frame, write_clip
from tests import data

pytestmark = pytest.mark.slow

STILL = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
KEY = "person-key"
PHOTO = "tongue.jpg"  # looks into the camera


def _comes_and_goes(path: Path) -> Path:
    """2 s of the face looking at the camera, then 4 s of nobody (the file camera loops)."""
    face = cv2.cvtColor(render_frame(data.load_rgb(PHOTO), 0, motion=STILL), cv2.COLOR_RGB2BGR)
    empty = np.empty_like(face)
    empty[:] = BACKGROUND_RGB[::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, DEFAULT_SIZE)
    try:
        for index in range(60 + 120):
            writer.write(face if index < 60 else empty)
    finally:
        writer.release()
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("person-clips")
    return {
        "comes-and-goes": _comes_and_goes(directory / "comes-and-goes.avi"),
        "still": write_clip(data.load_rgb(PHOTO), directory / "still.avi", 30, motion=STILL),
    }


async def _sse(response: Any, count: int, seconds: float = 20.0) -> list[dict[str, Any]]:
    """The next ``count`` events of an SSE response (keepalive comments skipped)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(seconds):
        while len(events) < count:
            line = (await response.content.readline()).decode()
            assert line, "the stream ended"
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
            else:
                assert line in ("\n", ": keepalive\n"), line
    return events


async def _until_kinds(response: Any, kinds: list[str], seconds: float = 25.0) -> list[Any]:
    """Events up to and including the last of ``kinds`` seen in that order."""
    seen: list[dict[str, Any]] = []
    wanted = list(kinds)
    deadline = time.monotonic() + seconds
    while wanted:
        (event,) = await _sse(response, 1, max(0.1, deadline - time.monotonic()))
        seen.append(event)
        if event["event"] == wanted[0]:
            wanted.pop(0)
    return seen


async def test_arrival_attention_and_departure_arrive_over_sse(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['comes-and-goes']}"})
    response = await client.get("/api/person/events")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    seen = await _until_kinds(
        response, ["arrived", "attention_start", "attention_end", "left", "arrived"]
    )
    for raw in seen:
        event = msgspec.convert(raw, PersonEvent)  # the schema: every field valid
        assert raw["type"] == "person" and isinstance(raw["ts"], int)
        assert "blendshapes" not in raw and "landmarks" not in raw
        del event
    kinds = [e["event"] for e in seen]
    first = kinds.index("arrived")
    assert kinds.index("attention_start") > first
    assert kinds.index("attention_end") < kinds.index("left")  # attention ends first
    arrived = seen[first]
    assert arrived["present"] and arrived["people"] == 1 and arrived["present_since"]
    attention = seen[kinds.index("attention_start")]
    assert attention["attention"] and attention["attention_since"] >= arrived["ts"]
    assert 0.1 < attention["distance_m"] < 1.5
    # Attention starts once it held 300 ms.
    assert attention["ts"] - attention["attention_since"] >= 250
    left = seen[kinds.index("left")]
    assert not left["present"] and left["attention"] is False
    assert "speaking_start" not in kinds  # a still face does not speak
    response.close()


async def test_summary_json_and_msgpack(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['still']}"})
    deadline = time.monotonic() + 20
    summary: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get("/api/person")
        if response.status == 200:
            summary = await response.json()
            if summary["attention"]:
                break
        await asyncio.sleep(0.1)
    assert summary["present"] and summary["attention"] and summary["people"] == 1
    assert summary["expression"] in ("neutral", "happy", "surprised", "sad", "angry", "disgusted")
    assert 0 <= summary["smile"] <= 1 and -1 <= summary["position"]["x"] <= 1
    assert summary["present_since"] <= summary["attention_since"] <= summary["ts"]
    packed = await client.get("/api/person", headers={"Accept": "application/msgpack"})
    assert packed.headers["Content-Type"].startswith("application/msgpack")
    decoded = msgspec.msgpack.decode(await packed.read(), type=PersonSummary)
    assert decoded.present
    # Clients of /api/tracking still get no landmarks, though perception used them.
    tracking = await (await client.get("/api/tracking")).json()
    assert tracking.get("landmarks") is None
    assert all(face.get("landmarks") is None for face in tracking["faces"])


async def test_tracking_socket_carries_person_events_on_request(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['still']}"})
    kinds: list[str] = []
    async with client.ws_connect("/ws/tracking?events=1&fields=head") as ws:
        async with asyncio.timeout(20):
            while "attention_start" not in kinds:
                message = await ws.receive()
                assert message.type == WSMsgType.TEXT
                data_ = json.loads(message.data)
                if data_.get("type") == "person":
                    kinds.append(data_["event"])
                else:
                    assert "frame" in data_
    assert kinds[0] == "arrived"
    # Without ?events the socket carries results only.
    async with client.ws_connect("/ws/tracking?fields=head") as ws:
        for _ in range(20):
            message = await ws.receive(timeout=10)
            assert '"person"' not in message.data
    response = await client.get("/ws/tracking?events=maybe")
    assert response.status == 400
    assert "events" in (await response.json())["error"]


async def test_history_has_attention_for_the_key_only(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['still']}"}, auth={"api_key": KEY})
    keyed = {"X-API-Key": KEY}
    deadline = time.monotonic() + 20
    entries: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        history = await (await client.get("/api/history", headers=keyed)).json()
        entries = [e for e in history["entries"] if e["type"] == "person"]
        if any(e["data"]["event"] == "attention_start" for e in entries):
            break
        await asyncio.sleep(0.2)
    assert [e["data"]["event"] for e in entries][:2] == ["arrived", "attention_start"]
    assert all(set(e["data"]) == {"event", "duration"} for e in entries)  # no face data
    public = await (await client.get("/api/history")).json()
    events = [e["data"]["event"] for e in public["entries"] if e["type"] == "person"]
    assert events == ["arrived"]


async def test_privacy_key_needed_and_viewers_never_see_perception(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['still']}"}, auth={"api_key": KEY})
    for path in ("/api/person", "/api/person/events"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers={"X-API-Key": "wrong"})).status == 403, path
    response = await client.get(f"/api/person/events?token={KEY}")
    assert response.status == 200
    async with client.ws_connect("/ws/viewer") as viewer:
        await _until_kinds(response, ["attention_start"])
        received: list[str] = []
        while True:
            try:
                message = await viewer.receive(timeout=1.0)
            except TimeoutError:
                break
            received.append(message.data)
    response.close()
    assert any('"presence"' in text for text in received)
    for text in received:
        for word in ("attention", "speaking", "distance", "expression_score", "smile"):
            assert word not in text, (word, text)


async def test_no_key_serves_loopback_only(faced_client, clips) -> None:
    client = await faced_client(
        camera={"source": f"file:{clips['still']}"},
        server={"trusted_proxies": ["127.0.0.1/32"]},
    )
    lan = {"X-Forwarded-For": "192.0.2.7"}
    for path in ("/api/person", "/api/person/events"):
        response = await client.get(path, headers=lan)
        assert response.status == 403, path
        assert "auth.api_key" in (await response.json())["error"]


async def test_without_a_camera_the_routes_say_so(faced_client) -> None:
    client = await faced_client()
    for path in ("/api/person", "/api/person/events"):
        response = await client.get(path)
        assert response.status == 503
        assert (await response.json())["error"] == "no camera: camera.source is none"


async def test_shutdown_ends_the_event_stream(run_faced, clips) -> None:
    import aiohttp  # noqa: PLC0415

    faced = await run_faced("--camera", f"file:{clips['still']}")
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{faced.url}/api/person/events")
        assert response.status == 200
        await _until_kinds(response, ["arrived"])
        faced.process.terminate()
        async with asyncio.timeout(10):
            while await response.content.readline():
                pass  # the stream ends: EOF, not a hang
        assert await faced.process.wait() == 0
