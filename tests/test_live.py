"""Live tracking through the real daemon: /ws/tracking, /api/tracking, presence, privacy.

The app runs on loopback with the ``file:`` source (an MJPEG
clip written from a test photograph by faced.vision.synthetic) or the ``demo`` source, the
real models, and real HTTP/WebSocket clients.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import WSMsgType

from faced.hub import Hub
from faced.keys import LIVE_KEY
from faced.schemas.person import PERSON_EVENT_KINDS
from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.synthetic import write_clip
from tests import data
from tests.helpers import until

FACE_PHOTO = "tongue.jpg"
KEY = "s3cret-key"


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb(FACE_PHOTO), directory / "face.avi", 60)


@pytest.fixture(scope="module")
def empty_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb(data.NO_FACE_PHOTO), directory / "cat.avi", 30)


async def _receive(ws: Any, count: int, seconds: float = 10.0) -> list[Any]:
    results = []
    for _ in range(count):
        message = await ws.receive(timeout=seconds)
        if message.type == WSMsgType.TEXT:
            results.append(json.loads(message.data))
        elif message.type == WSMsgType.BINARY:
            results.append(msgspec.msgpack.decode(message.data))
        else:
            raise AssertionError(f"socket ended: {message}")
    return results


async def test_tracking_socket_streams_face_results_as_json(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with client.ws_connect("/ws/tracking") as ws:
        results = await _receive(ws, 12)
        await ws.send_str('{"type": "ping"}')
        replies = await _receive(ws, 10)
    assert {"type": "pong"} in replies
    results += [r for r in replies if "type" not in r]
    found = [r for r in results if r["face_found"]]
    assert len(found) >= 8, [r["face_found"] for r in results]
    first = found[-1]
    assert set(first["blendshapes"]) == set(ARKIT_NAMES)
    assert set(first["head"]) >= {"yaw", "pitch", "roll"}
    assert first["image"] == {"width": 640, "height": 480}
    frames = [r["frame"] for r in results]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert all(0 < r["latency_ms"] < 1000 for r in results)
    assert results[-1]["fps"] > 5
    assert results[-1]["ts"] == pytest.approx(time.time() * 1000, abs=5000)


async def test_msgpack_and_field_trimming(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with client.ws_connect("/ws/tracking?encoding=msgpack&fields=blendshapes,head") as ws:
        message = await ws.receive(timeout=10)
        assert message.type == WSMsgType.BINARY
        results = [msgspec.msgpack.decode(message.data), *await _receive(ws, 5)]
    for result in results:
        assert set(result) == {
            "blendshapes",
            "head",
            "frame",
            "ts",
            "fps",
            "latency_ms",
            "face_found",
        }
    assert any(r["blendshapes"] for r in results)


async def test_rate_cap_per_client(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    async with client.ws_connect("/ws/tracking?fps=4&fields=head") as ws:
        started = time.monotonic()
        results = await _receive(ws, 5)
        elapsed = time.monotonic() - started
    # 5 results at 4/s take at least 4 intervals of 0.25 s (the first comes at once).
    assert elapsed >= 0.9, elapsed
    gaps = [b["frame"] - a["frame"] for a, b in itertools.pairwise(results)]
    assert all(gap >= 4 for gap in gaps), gaps  # a 30 fps camera, 4 results/s


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("fields=blendshapes,nose", "fields"),
        ("fields=landmarks", "fields"),
        ("encoding=xml", "encoding"),
        ("fps=0", "fps"),
        ("fps=nan", "fps"),
    ],
)
async def test_bad_socket_parameters_are_400(faced_client, face_clip, query, field) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    response = await client.get(f"/ws/tracking?{query}")
    assert response.status == 400
    body = await response.json()
    assert body["field"] == field
    assert field in body["error"]
    assert not client.app[LIVE_KEY].clients


async def test_latest_result_and_emotion_state(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.latest is not None and live.latest.face_found)
    response = await client.get("/api/tracking")
    assert response.status == 200
    latest = await response.json()
    assert latest["face_found"] is True and "latency_ms" in latest and "frame" in latest
    response = await client.get("/api/emotion_state", headers={"Accept": "application/msgpack"})
    assert response.status == 200
    state = msgspec.msgpack.decode(await response.read())
    assert set(state) == {"face_found", "frame", "ts", "blendshapes"}
    assert set(state["blendshapes"]) == set(ARKIT_NAMES)


async def test_health_reports_camera_and_tracking(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.processed >= 10)
    body = await (await client.get("/health")).json()
    assert body["status"] == "ok"
    camera = body["components"]["camera"]
    assert camera["status"] == "ok" and camera["source"] == f"file:{face_clip}"
    tracking = body["components"]["tracking"]
    assert tracking["status"] == "ok" and tracking["fps"] > 5


async def test_without_camera_routes_say_so(faced_client) -> None:
    client = await faced_client()
    for path in ("/api/tracking", "/api/emotion_state", "/ws/tracking"):
        response = await client.get(path)
        assert response.status == 503, path
        assert (await response.json())["error"] == "no camera: camera.source is none"
    body = await (await client.get("/health")).json()
    assert body["components"]["camera"] == {"status": "off", "source": "none"}
    assert body["components"]["tracking"]["status"] == "off"


async def test_tracking_off_keeps_the_camera(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}", "tracking": False})
    response = await client.get("/api/tracking")
    assert response.status == 503
    assert "camera.tracking is false" in (await response.json())["error"]
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.frames > 3)


# --- privacy ----------------------------------------------------------------------------------


async def test_key_is_required_when_set(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"}, auth={"api_key": KEY})
    for path in ("/api/tracking", "/api/emotion_state", "/ws/tracking"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers={"X-API-Key": "wrong"})).status == 403, path
    async with client.ws_connect(f"/ws/tracking?token={KEY}&fields=head") as ws:
        assert len(await _receive(ws, 2)) == 2


async def test_no_key_serves_loopback_only(faced_client, face_clip) -> None:
    # A trusted local proxy forwards a LAN client: the real client address is not loopback.
    client = await faced_client(
        camera={"source": f"file:{face_clip}", "preview": True},
        server={"trusted_proxies": ["127.0.0.1/32"]},
    )
    lan = {"X-Forwarded-For": "192.0.2.7"}
    for path in ("/api/tracking", "/api/emotion_state", "/ws/tracking", "/api/camera/preview.mjpg"):
        response = await client.get(path, headers=lan)
        assert response.status == 403, path
        assert "auth.api_key" in (await response.json())["error"], path
    # The public viewer socket stays open to the LAN.
    async with client.ws_connect("/ws/viewer", headers=lan) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "state"


async def test_viewer_gets_presence_but_never_face_data(faced_client, face_clip) -> None:
    client = await faced_client(
        camera={"source": f"file:{face_clip}"}, server={"trusted_proxies": ["127.0.0.1/32"]}
    )
    seen: list[dict[str, Any]] = []
    async with client.ws_connect("/ws/viewer") as ws:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                message = await ws.receive(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            assert message.type == WSMsgType.TEXT
            assert "blendshapes" not in message.data and "landmarks" not in message.data
            assert "jawOpen" not in message.data and "image" not in message.data
            seen.append(json.loads(message.data))
    presence = [m for m in seen if m["type"] == "presence"]
    assert presence and presence[0]["event"] == "arrived" and presence[0]["present"] is True
    assert set(presence[0]) <= {"type", "event", "present", "ts", "duration", "position"}
    assert -1 <= presence[0]["position"]["x"] <= 1 and -1 <= presence[0]["position"]["y"] <= 1
    assert any(m["event"] == "moved" for m in presence[1:])  # the synthetic face drifts
    # The public history (a LAN caller, no key set) has presence only, as viewers do.
    lan = {"X-Forwarded-For": "192.0.2.7"}
    history = await (await client.get("/api/history", headers=lan)).json()
    people = [e for e in history["entries"] if e["type"] == "person"]
    assert people == [
        {"type": "person", "ts": people[0]["ts"], "data": {"event": "arrived", "duration": None}}
    ]
    # A loopback caller may see camera-derived data: attention or speech may follow, never
    # face data.
    history = await (await client.get("/api/history")).json()
    people = [e for e in history["entries"] if e["type"] == "person"]
    assert people[0]["data"] == {"event": "arrived", "duration": None}
    assert all(set(e["data"]) == {"event", "duration"} for e in people)
    assert {e["data"]["event"] for e in people} <= set(PERSON_EVENT_KINDS)


async def test_nobody_in_front_of_the_camera_means_no_presence(faced_client, empty_clip) -> None:
    client = await faced_client(camera={"source": f"file:{empty_clip}"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    async with client.ws_connect("/ws/viewer") as ws:
        await until(lambda: live.processed >= 15)
        types = []
        while True:
            try:
                types.append((await ws.receive_json(timeout=0.3))["type"])
            except TimeoutError:
                break
    # The cat is a hard negative: in video mode the pipeline, like MediaPipe 1.2.2 on the
    # same clip (frames 7, 12, 14, 25, …), flags a face on a few single frames; presence
    # needs a face held for a while, so none of those flickers may announce a person.
    assert "presence" not in types
    assert live.latest is not None


# --- the demo source and the preview --------------------------------------------------------


async def test_demo_source_tracks_a_face(faced_client) -> None:
    client = await faced_client(camera={"source": "demo"})
    async with client.ws_connect("/ws/tracking?fields=head") as ws:
        results = await _receive(ws, 10)
    assert sum(r["face_found"] for r in results) >= 8
    body = await (await client.get("/health")).json()
    assert body["components"]["camera"]["source"] == "demo"


async def test_preview_is_off_by_default(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}"})
    response = await client.get("/api/camera/preview.mjpg")
    assert response.status == 404
    assert "camera.preview = true" in (await response.json())["error"]


async def test_preview_streams_jpeg_frames_when_enabled(faced_client, face_clip) -> None:
    client = await faced_client(camera={"source": f"file:{face_clip}", "preview": True})
    response = await client.get("/api/camera/preview.mjpg")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
    assert response.headers["Cache-Control"] == "no-store"
    buffer = b""
    while buffer.count(b"\xff\xd9") < 2:  # two whole JPEGs
        buffer += await asyncio.wait_for(response.content.readany(), 5)
    response.close()
    first = buffer.index(b"\r\n\r\n") + 4
    assert buffer.startswith(b"--faced-preview\r\nContent-Type: image/jpeg\r\n")
    assert buffer[first : first + 2] == b"\xff\xd8"


# --- slow clients and shutdown ----------------------------------------------------------------


def test_a_slow_client_holds_one_result_at_most() -> None:
    client = Hub(max_messages=1, max_bytes=1).subscribe_latest("json", max_rate_hz=10.0)
    client.offer(b"first", now=10.0)
    client.offer(b"too soon", now=10.05)  # over the rate cap: not taken
    assert client.pending == b"first" and client.skipped == 0
    for step in range(1, 50):  # the client sends nothing meanwhile
        client.offer(f"result {step}".encode(), now=10.0 + step * 0.1)
    assert client.pending == b"result 49"  # only the newest, never a backlog
    assert client.skipped == 49
    assert len(client) == 1  # the sender has one result waiting for it


async def test_shutdown_closes_tracking_sockets_with_1001(run_faced, face_clip) -> None:
    faced = await run_faced("--camera", f"file:{face_clip}")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{faced.url}/ws/tracking?fields=head") as ws,
    ):
        assert len(await _receive(ws, 2)) == 2
        faced.terminate()
        while (message := await ws.receive(timeout=5)).type in (
            WSMsgType.TEXT,
            WSMsgType.BINARY,
        ):
            pass
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        assert ws.close_code == 1001
    assert await faced.wait_exit() == 0
