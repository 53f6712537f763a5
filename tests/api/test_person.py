"""GET /api/person, its Server-Sent Events, /ws/tracking?events=1 and the history's person
entries, through the real daemon.

A ``file:`` camera plays a clip of a real photograph (a face looking at the camera) that
comes and goes, turns away and back, shrinks to half its size, or whose mouth is opened
(faced.vision.synthetic, placed by the pipeline's own landmarks) at speech rate or once
and held; the real models
track it and faced.perception runs on every result. Real HTTP, SSE and WebSocket clients
read what an agent would; viewers never see perception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import msgspec
import numpy as np
import pytest
from aiohttp import WSMsgType

from faced.schemas.person import PersonEvent, PersonSummary
from faced.vision.synthetic import (
    DEFAULT_SIZE,
    Motion,
    open_mouth,
    render_frame,
    turn_head,
    write_clip,
)
from tests import data
from tests.helpers import write_face_then_nobody

pytestmark = pytest.mark.slow

STILL = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
KEY = "person-key"
PHOTO = "tongue.jpg"  # looks into the camera
MOUTH_PHOTO = "takeo.ppm"  # a closed mouth, looking into the camera
FPS = 30


def _write(path: Path, frames: list[np.ndarray]) -> Path:
    """RGB frames as an MJPEG clip at 30 frames/s (the file camera loops it)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, DEFAULT_SIZE)
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def _mouth_clips(directory: Path) -> dict[str, Path]:
    """Speech: still 1.5 s, the mouth opening and closing at 3 Hz for 3 s, still 3 s. A
    yawn: still 1 s, the mouth opening over 0.3 s, held open 1.5 s, closing, still 2 s.
    The gap is 20 % of the face's height (the tracker reads jawOpen ~0 closed, ~0.55 open,
    against speaking_amplitude 0.12)."""
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    frame = render_frame(data.load_rgb(MOUTH_PHOTO), 0, motion=STILL)
    pipeline = FacePipeline.load(None, detector="auto")
    face = pipeline.analyze(frame, landmarks=True).faces[0]
    assert face.landmarks is not None
    wide = 0.2 * face.bbox[3] * DEFAULT_SIZE[1]
    opened = open_mouth(frame, face.landmarks, wide)
    # Precondition: the model reads the warp as an open jaw, well beyond a swing.
    shut = face.blendshapes["jawOpen"]
    agape = pipeline.analyze(opened, landmarks=True).faces[0].blendshapes["jawOpen"]
    print(f"jawOpen closed {shut:.2f}, opened {agape:.2f}")
    assert agape - shut > 0.3

    def gap(index: int) -> float:  # 3 Hz: closed, open, closed every 10 frames
        return wide * 0.5 * (1 - math.cos(2 * math.pi * 3 * index / FPS))

    speech = [frame] * 45
    speech += [open_mouth(frame, face.landmarks, gap(i)) for i in range(90)]
    speech += [frame] * 90
    ramp = [open_mouth(frame, face.landmarks, wide * (i + 1) / 9) for i in range(9)]
    yawn = [frame] * 30 + ramp + [opened] * 45 + ramp[::-1] + [frame] * 60
    return {
        "speech": _write(directory / "speech.avi", speech),
        "yawn": _write(directory / "yawn.avi", yawn),
    }


def _turns_away(path: Path) -> Path:
    """The face toward the camera for 2 s, turned 50° away for 2 s (a cylinder warp round
    the face: the tracker reads about 25° of yaw, beyond the attention cone), back for 3 s."""
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    facing = render_frame(data.load_rgb(MOUTH_PHOTO), 0, motion=STILL)
    face = FacePipeline.load(None, detector="auto").analyze(facing).faces[0]
    width = face.bbox[2] * DEFAULT_SIZE[0]
    centre = face.bbox[0] * DEFAULT_SIZE[0] + width / 2
    turned = turn_head(facing, 50.0, centre, 0.75 * width)
    return _write(path, [facing] * 60 + [turned] * 60 + [facing] * 90)


def _shrinks(path: Path) -> Path:
    """The same face at full size for 2 s, shrinking to half its size over 1 s (as a person
    stepping back: the tracker follows it), at half size for 3 s, same frame size."""
    photo = data.load_rgb(PHOTO)

    def sized(fill: float) -> np.ndarray:
        motion = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=fill)
        return render_frame(photo, 0, motion=motion)

    full, half = STILL.fill, STILL.fill / 2
    shrinking = [sized(full + (half - full) * (i + 1) / FPS) for i in range(FPS)]
    return _write(path, [sized(full)] * 60 + shrinking + [sized(half)] * 90)


def _comes_and_goes(path: Path) -> Path:
    """2 s of the face looking at the camera, then 4 s of nobody (the file camera loops)."""
    return write_face_then_nobody(path, render_frame(data.load_rgb(PHOTO), 0, motion=STILL), 60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("person-clips")
    return {
        "comes-and-goes": _comes_and_goes(directory / "comes-and-goes.avi"),
        "still": write_clip(data.load_rgb(PHOTO), directory / "still.avi", 30, motion=STILL),
        "two": write_clip(
            data.load_rgb("breakingbad.jpg"), directory / "two.avi", 30, motion=STILL
        ),
        "shrinks": _shrinks(directory / "shrinks.avi"),
        "turns": _turns_away(directory / "turns.avi"),
        **_mouth_clips(directory),
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


async def test_turning_away_and_back_ends_and_restarts_attention(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['turns']}"})
    response = await client.get("/api/person/events")
    seen = await _until_kinds(response, ["attention_start", "attention_end", "attention_start"], 40)
    response.close()
    kinds = [e["event"] for e in seen]
    first = kinds.index("attention_start")
    end = kinds.index("attention_end", first)
    again = kinds.index("attention_start", end)
    start, stop, back = seen[first], seen[end], seen[again]
    assert "left" not in kinds[first:again]  # only the head turned; the person stayed
    for event in (start, stop, back):
        assert event["present"] and event["present_since"] == start["present_since"]
    assert start["attention"] and start["attention_since"] <= start["ts"]
    assert stop["attention"] is False and stop["attention_since"] is None
    assert start["ts"] < stop["ts"] < back["ts"]
    assert back["attention"] and stop["ts"] < back["attention_since"] <= back["ts"]


async def test_snapshot_first_on_request(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['still']}"})
    plain = await client.get("/api/person/events")
    await _until_kinds(plain, ["attention_start"])  # someone is there, looking
    # A client that joins now missed arrived: the snapshot says who is there.
    response = await client.get("/api/person/events?snapshot=1")
    assert response.status == 200
    (snapshot,) = await _sse(response, 1)
    msgspec.convert(snapshot, PersonEvent)
    assert snapshot["event"] == "snapshot" and snapshot["type"] == "person"
    assert snapshot["present"] and snapshot["attention"] and snapshot["people"] == 1
    assert snapshot["present_since"] <= snapshot["attention_since"] <= snapshot["ts"]
    summary = await (await client.get("/api/person")).json()
    assert summary["present_since"] == snapshot["present_since"]
    response.close()
    plain.close()
    for value in ("maybe", "2"):
        response = await client.get(f"/api/person/events?snapshot={value}")
        assert response.status == 400, value
        assert "snapshot" in (await response.json())["error"]
    history = await (await client.get("/api/history")).json()
    kinds = [e["data"]["event"] for e in history["entries"] if e["type"] == "person"]
    assert "snapshot" not in kinds


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


async def test_people_counts_the_faces_in_view(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['two']}"}, vision={"num_faces": 2})
    async with asyncio.timeout(20):
        while True:
            response = await client.get("/api/person")
            if response.status == 200 and (await response.json())["people"] == 2:
                break
            await asyncio.sleep(0.1)


async def test_a_face_half_the_size_reads_twice_as_far(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['shrinks']}"})
    by_size: dict[str, list[float]] = {"full": [], "half": []}
    async with asyncio.timeout(40):
        while min(len(v) for v in by_size.values()) < 8:
            person = await client.get("/api/person")
            tracking = await client.get("/api/tracking")
            if person.status != 200 or tracking.status != 200:
                await asyncio.sleep(0.1)
                continue
            summary, result = await person.json(), await tracking.json()
            # The summary and the face's size from the same frame only.
            if summary["ts"] == result["ts"] and result["faces"] and summary["distance_m"]:
                width = result["faces"][0]["bbox"][2]
                by_size["full" if width > 0.25 else "half"].append(summary["distance_m"])
            await asyncio.sleep(0.05)
    full, half = (statistics.median(by_size[k]) for k in ("full", "half"))
    print(f"distance_m full size {full:.3f}, half size {half:.3f}: x{half / full:.2f}")
    assert 2 * 0.8 <= half / full <= 2 * 1.2


async def test_mouth_moving_at_speech_rate_speaks_and_stops(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['speech']}"})
    response = await client.get("/api/person/events")
    seen = await _until_kinds(response, ["arrived", "speaking_start", "speaking_end"], 40)
    response.close()
    kinds = [e["event"] for e in seen]
    assert kinds.count("speaking_start") == 1 and kinds.count("speaking_end") == 1
    start = seen[kinds.index("speaking_start")]
    end = seen[kinds.index("speaking_end")]
    assert start["speaking"] and start["speaking_since"] == start["ts"]
    assert end["speaking"] is False and end["speaking_since"] is None
    assert start["present"] and end["present"]  # the face stays; only the mouth stopped
    # One stretch of 3 s of speech, not a flicker: it held across the swings in between.
    assert end["ts"] - start["ts"] >= 1500


async def test_one_open_mouth_held_is_not_speech(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['yawn']}"})
    response = await client.get("/api/person/events")
    seen = await _until_kinds(response, ["arrived", "attention_start"], 25)
    # Two loops of the 5.3 s clip: the mouth opens, holds and closes twice.
    with contextlib.suppress(TimeoutError):
        seen += await _sse(response, 100, seconds=11)
    response.close()
    kinds = [e["event"] for e in seen]
    assert "speaking_start" not in kinds, kinds
    assert "left" not in kinds  # the face was there throughout
