"""Gaze follow and mirror through the real daemon: camera → tracking → face state → viewers.

A ``file:`` camera plays a clip of a real photograph placed on
one side of the frame; the real models track it; a real /ws/viewer client sees the face
state change (and never face data); agents use the real HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import WSMsgType

from faced.vision.synthetic import BACKGROUND_RGB, Motion, render_frame, write_clip
from tests import data
from tests.helpers import write_face_then_nobody

STILL = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=1.0)
FACE_DATA = ("blendshapes", "eyeBlink", "landmarks", "bbox", '"faces"', '"head"')
KEY = "follow-key"


def _clip(directory: Path, side: str) -> Path:
    """A still clip of the photo's face on the ``side`` half of the camera's image."""
    return write_clip(_canvas(side), directory / f"face-{side}.avi", 30, motion=STILL)


def _canvas(side: str) -> np.ndarray:
    photo = data.load_rgb("tongue.jpg")
    height, width = photo.shape[:2]
    canvas = np.empty((height, 2 * width, 3), np.uint8)
    canvas[:] = BACKGROUND_RGB
    left = 0 if side == "left" else width
    canvas[:, left : left + width] = photo
    return canvas


def _comes_and_goes(directory: Path) -> Path:
    """1.5 s of the face on the left, then 4 s of nobody (the file camera loops)."""
    face = render_frame(_canvas("left"), 0, motion=STILL)
    return write_face_then_nobody(directory / "comes-and-goes.avi", face, 45)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("follow-clips")
    clips = {side: _clip(directory, side) for side in ("left", "right")}
    clips["comes-and-goes"] = _comes_and_goes(directory)
    return clips


class Viewer:
    """A /ws/viewer client keeping every message (and its arrival time) it receives."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.raw: list[str] = []
        self.messages: list[tuple[float, dict[str, Any]]] = []

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], seconds: float = 20.0
    ) -> tuple[float, dict[str, Any]]:
        """The first message (from now on) matching ``predicate``, with its arrival time."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                states = [m for _, m in self.messages if m.get("type") == "state"][-5:]
                raise AssertionError(f"no such message in {seconds} s; last states {states}")
            message = await self.socket.receive(timeout=left)
            if message.type != WSMsgType.TEXT:
                raise AssertionError(f"viewer socket ended: {message}")
            arrived = time.monotonic()
            self.raw.append(message.data)
            decoded = json.loads(message.data)
            self.messages.append((arrived, decoded))
            if predicate(decoded):
                return arrived, decoded

    def states(self) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("type") == "state"]

    def assert_no_face_data(self) -> None:
        for text in self.raw:
            for word in FACE_DATA:
                assert word not in text, f"{word} reached a viewer: {text[:200]}"


def looks(condition: Callable[[float], bool]) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == "state" and condition(m["lookAt"]["x"])


async def _health(client: Any) -> dict[str, Any]:
    response = await client.get("/health")
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.parametrize(("side", "sign"), [("left", 1), ("right", -1)])
async def test_viewers_see_the_face_look_at_the_person(faced_client, clips, side, sign) -> None:
    # The person on the camera image's left is on the camera's (and the face's) left: the
    # face looks toward its left, the screen's right as the person sees it (lookAt.x > 0).
    client = await faced_client(camera={"source": f"file:{clips[side]}"})
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        _, state = await viewer.until(looks(lambda x: sign * x > 0.3))
        # Keep listening while the gaze settles (and presence events come and go).
        await viewer.until(lambda m: m.get("type") == "presence", seconds=20)
    assert abs(state["lookAt"]["y"]) < 0.5
    viewer.assert_no_face_data()
    follow = await (await client.get("/api/follow")).json()
    assert follow == {"mode": "follow", "hold_s": 5.0, "tracking": True, "holding": []}
    health = await _health(client)
    assert health["components"]["follow"]["status"] == "ok"
    assert health["components"]["follow"]["updates"] >= 1
    # The camera's gaze is no agent's word: it holds nothing and the state says where it is.
    current = await (await client.get("/api/state")).json()
    assert sign * current["lookAt"]["x"] > 0.3


async def test_follow_on_attention_waits_until_the_person_attends(faced_client, clips) -> None:
    # The photograph looks into its camera; on the left of the frame its head is turned
    # ~30° from the box's camera: a cone of 60° takes it as attending.
    client = await faced_client(
        camera={"source": f"file:{clips['left']}"},
        perception={"follow_on_attention": True, "head_yaw_deg": 60, "gaze_deg": 60},
    )
    events = await client.get("/api/person/events")
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(looks(lambda x: x > 0.3))
    attended = []
    async with asyncio.timeout(10):
        while not attended:
            line = (await events.content.readline()).decode()
            if line.startswith("data: "):
                attended = [json.loads(line[6:])] if "attention_start" in line else []
    events.close()
    viewer.assert_no_face_data()
    assert (await _health(client))["components"]["follow"]["on_attention"] is True


async def test_follow_on_attention_leaves_someone_not_attending_alone(faced_client, clips) -> None:
    # A cone nobody meets: the person is there, never attends, and the face never turns.
    client = await faced_client(
        camera={"source": f"file:{clips['left']}"},
        perception={"follow_on_attention": True, "gaze_deg": 0.001, "head_yaw_deg": 0.001},
    )
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(lambda m: m.get("event") == "arrived")
        deadline = time.monotonic() + 30
        processed = 0
        while processed < 60:  # two seconds of tracking after the arrival, about
            assert time.monotonic() < deadline, "tracking did not run"
            processed = (await _health(client))["components"]["tracking"]["processed"]
            await asyncio.sleep(0.1)
        with pytest.raises((AssertionError, TimeoutError)):  # no message, or none such
            await viewer.until(looks(lambda x: x != 0.0), seconds=1.0)
    assert all(s["lookAt"]["x"] == 0.0 for s in viewer.states())
    person = await (await client.get("/api/person")).json()
    assert person["present"] and not person["attention"]


async def test_an_agents_look_at_wins_for_the_hold_time(faced_client, clips) -> None:
    hold_s = 2.0
    client = await faced_client(
        camera={"source": f"file:{clips['left']}"}, follow={"hold_s": hold_s}
    )
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(looks(lambda x: x > 0.3))
        sent = time.monotonic()
        reply = await client.post("/api/state", json={"lookAt": {"x": -0.8, "y": -0.5}})
        assert reply.status == 200
        _, agent = await viewer.until(looks(lambda x: x == -0.8))
        assert agent["lookAt"]["y"] == -0.5
        # The camera resumes only after the hold (the server's hold starts after `sent`).
        resumed_at, resumed = await viewer.until(looks(lambda x: x != -0.8))
        assert resumed_at - sent >= hold_s, resumed_at - sent
        assert resumed["lookAt"]["x"] > -0.8  # easing back toward the person on the left
        await viewer.until(looks(lambda x: x > 0.3))
    viewer.assert_no_face_data()


async def test_mode_off_sends_nothing_until_switched_on(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['left']}"}, follow={"mode": "off"})
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(lambda m: m.get("type") == "state")  # the greeting
        # The person is seen (presence arrives after 0.3 s of face) and tracked for a while.
        await viewer.until(lambda m: m.get("event") == "arrived")
        deadline = time.monotonic() + 30
        processed = 0
        while processed < 60:
            assert time.monotonic() < deadline, "tracking did not run"
            processed = (await _health(client))["components"]["tracking"]["processed"]
            await asyncio.sleep(0.1)
        reply = await client.put("/api/follow", json={"mode": "follow"})
        assert reply.status == 200
        assert (await reply.json())["mode"] == "follow"
        await viewer.until(looks(lambda x: x > 0.3))
    states = viewer.states()
    # Only the greeting came before the switch; every later state is the camera's gaze.
    assert states[0]["lookAt"] == {"x": 0.0, "y": 0.0}
    assert all(s["lookAt"]["x"] > 0 for s in states[1:]), states
    assert (await _health(client))["components"]["follow"]["mode"] == "follow"


async def test_mirror_mode_copies_the_person_then_returns_to_rest(faced_client, clips) -> None:
    # The photograph's brows are raised high (browInnerUp ~0.95): mirrored as surprised.
    client = await faced_client(camera={"source": f"file:{clips['left']}"})
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(looks(lambda x: x > 0.3))
        reply = await client.put("/api/follow", json={"mode": "mirror"})
        assert reply.status == 200
        _, surprised = await viewer.until(
            lambda m: m.get("type") == "state" and m["emotion"] == "surprised"
        )
        assert 0.3 <= surprised["intensity"] <= 1.0
        assert surprised["winkLeft"] == 0.0 and surprised["winkRight"] == 0.0  # eyes open
        reply = await client.put("/api/follow", json={"mode": "off"})
        assert reply.status == 200
        _, rest = await viewer.until(
            lambda m: (
                m.get("type") == "state"
                and m["emotion"] == "neutral"
                and m["lookAt"] == {"x": 0.0, "y": 0.0}
            )
        )
    assert rest["amplitude"] == 0.0 and rest["intensity"] == 1.0
    viewer.assert_no_face_data()


async def test_follow_api_validates_and_reports_holds(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['left']}"})
    for body, field in [
        ({"mode": "sideways"}, "mode"),
        ({"mode": None}, "mode"),
        ({"hold_s": -1}, "hold_s"),
        ({"hold_s": "long"}, "hold_s"),
    ]:
        reply = await client.put("/api/follow", json=body)
        assert reply.status == 400, body
        error = await reply.json()
        assert error["field"] == field and field in error["error"], error
    reply = await client.put("/api/follow", json={"mode": "sideways"})
    assert sorted((await reply.json())["allowed"]) == ["follow", "mirror", "off"]
    reply = await client.put("/api/follow", json={"mood": "follow"})
    assert reply.status == 400 and "mood" in (await reply.json())["error"]
    reply = await client.put("/api/follow", data=b"")
    assert reply.status == 400
    reply = await client.put("/api/follow", data=b"[1, 2")
    assert reply.status == 400
    assert (await (await client.get("/api/follow")).json())["mode"] == "follow"  # unchanged

    # A long hold makes "what is held" observable without racing the clock.
    reply = await client.put("/api/follow", json={"hold_s": 3600})
    assert (await reply.json())["hold_s"] == 3600
    await client.post("/api/state", json={"lookAt": {"x": 0.2}})
    assert (await (await client.get("/api/follow")).json())["holding"] == ["gaze"]
    await client.post("/api/state", json={"state": "thinking"})
    holding = (await (await client.get("/api/follow")).json())["holding"]
    assert holding == ["gaze", "expression", "winks", "mouth"]


async def test_follow_api_needs_the_key_and_says_when_there_is_no_camera(faced_client) -> None:
    client = await faced_client(auth={"api_key": KEY})
    assert (await client.get("/api/follow")).status == 401
    assert (await client.put("/api/follow", json={"mode": "off"})).status == 401
    headers = {"Authorization": f"Bearer {KEY}"}
    status = await (await client.get("/api/follow", headers=headers)).json()
    assert status == {"mode": "follow", "hold_s": 5.0, "tracking": False, "holding": []}
    reply = await client.put("/api/follow", json={"mode": "mirror"}, headers=headers)
    assert reply.status == 200 and (await reply.json())["mode"] == "mirror"
    health = await _health(client)
    assert health["components"]["follow"] == {
        "status": "off",
        "mode": "mirror",
        "reason": "no live tracking",
    }


async def test_speaking_holds_the_camera_off_every_field(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['left']}"})
    await client.put("/api/follow", json={"hold_s": 3600})
    reply = await client.post("/api/speak", json={"text": "hello", "expectAudio": False})
    assert reply.status == 200
    holding = (await (await client.get("/api/follow")).json())["holding"]
    assert holding == ["gaze", "expression", "winks", "mouth"]


async def test_the_gaze_returns_to_centre_when_the_person_leaves(faced_client, clips) -> None:
    client = await faced_client(camera={"source": f"file:{clips['comes-and-goes']}"})
    async with client.ws_connect("/ws/viewer") as socket:
        viewer = Viewer(socket)
        await viewer.until(looks(lambda x: x > 0.3))
        await viewer.until(
            lambda m: m.get("type") == "state" and m["lookAt"] == {"x": 0.0, "y": 0.0}
        )
    xs = [s["lookAt"]["x"] for s in viewer.states()]
    peak = xs.index(max(xs))
    returning = xs[peak:]
    assert returning == sorted(returning, reverse=True)  # eased back, never past the centre
    assert len(returning) >= 4, returning  # several steps, not a jump
