"""The display policy: presence and agent activity dim, switch off and wake the display.

The rules are checked on ``DisplayPolicy`` itself with injected
clocks (no waiting minutes); then through the real daemon: a temporary sysfs backlight tree
(the OS boundary) changes as agents post to /api/state and /api/speak, as the face falls
asleep, and as a person comes and goes in front of the ``file:`` camera (a clip with a face,
then an empty room, tracked by the real models).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pytest
from aiohttp import WSMsgType

from faced.display_policy import DisplayPolicy, parse_window
from faced.schemas.face_state import AudioMessage, AudioSeqMessage, StateMessage
from faced.schemas.tracking import PresenceMessage
from faced.vision.synthetic import DEFAULT_FPS, DEFAULT_SIZE, synthetic_frames
from tests import data
from tests.devices.test_display import MAX_RAW, WLR_RANDR, make_backlight, read, write_tool
from tests.helpers import until

DIM = 20
DIM_RAW = str(round(DIM / 100 * MAX_RAW))
FULL_RAW = str(MAX_RAW)


class Clock:
    """A hand-wound clock: tests move it forward."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **kwargs: Any) -> DisplayPolicy:
    kwargs.setdefault("dim_after_s", 60.0)
    kwargs.setdefault("off_after_s", 300.0)
    kwargs.setdefault("local_time", lambda: 12 * 3600.0)
    return DisplayPolicy(clock=clock, **kwargs)


def presence(event: Literal["arrived", "moved", "left"]) -> PresenceMessage:
    return PresenceMessage(event=event, present=event != "left", ts=0)


# --- the rules, on the pure policy -------------------------------------------------------------


def test_quiet_dims_then_switches_off() -> None:
    clock = Clock()
    rules = policy(clock)
    assert rules.level() == "on"
    assert rules.next_deadline() == 1060.0
    clock.now = 1059.9
    assert rules.level() == "on"
    clock.now = 1060.0
    assert rules.level() == "dim"
    assert rules.next_deadline() == 1300.0
    clock.now = 1300.0
    assert rules.level() == "off"
    assert rules.next_deadline() is None


def test_a_present_person_keeps_it_on_and_leaving_starts_the_count() -> None:
    clock = Clock()
    rules = policy(clock)
    clock.now += 400
    assert rules.level() == "off"
    rules.observe(presence("arrived"))
    assert rules.level() == "on"  # at once
    clock.now += 10_000  # standing there for hours
    assert rules.level() == "on"
    assert rules.next_deadline() is None
    rules.observe(presence("left"))
    left = clock.now
    clock.now = left + 59
    assert rules.level() == "on"
    clock.now = left + 60
    assert rules.level() == "dim"


def test_agent_activity_wakes_and_restarts_the_count() -> None:
    clock = Clock()
    rules = policy(clock)
    clock.now += 300
    assert rules.level() == "off"
    rules.agent_wrote()
    assert rules.level() == "on"
    clock.now += 60
    assert rules.level() == "dim"
    rules.observe(AudioSeqMessage(seq=1, expect_audio=True))
    assert rules.level() == "on"
    clock.now += 60
    rules.observe(AudioMessage(data="", seq=1))
    assert rules.level() == "on"


def test_state_messages_alone_are_not_activity() -> None:
    """The face's own timers and gaze follow publish states too; only agents count."""
    clock = Clock()
    rules = policy(clock)
    clock.now += 60
    rules.observe(StateMessage(state="idle", emotion="happy", amplitude=0.7))
    assert rules.level() == "dim"


def test_sleeping_dims_at_most() -> None:
    clock = Clock()
    rules = policy(clock)
    rules.observe(presence("arrived"))
    rules.observe(StateMessage(state="sleeping"))
    assert rules.level() == "dim"  # even with someone there
    rules.observe(presence("left"))
    clock.now += 300
    assert rules.level() == "off"  # quiet long enough: off still wins
    rules.observe(StateMessage(state="idle"))
    rules.agent_wrote()
    assert rules.level() == "on"


def test_zero_disables_a_step() -> None:
    clock = Clock()
    rules = policy(clock, dim_after_s=0.0, off_after_s=30.0)
    clock.now += 29
    assert rules.level() == "on"
    clock.now += 1
    assert rules.level() == "off"
    never = policy(clock, dim_after_s=0.0, off_after_s=0.0)
    clock.now += 1e6
    assert never.level() == "on" and never.next_deadline() is None


def test_night_window_across_midnight() -> None:
    clock = Clock()
    local = [22 * 3600.0]  # 22:00
    rules = policy(
        clock, night=parse_window("23:00-07:00"), night_level="dim", local_time=lambda: local[0]
    )
    rules.observe(presence("arrived"))
    assert rules.level() == "on"
    assert rules.next_deadline() == clock.now + 3600  # 23:00
    local[0] = 23 * 3600.0
    assert rules.level() == "dim"  # someone there, but it is night
    assert rules.next_deadline() == clock.now + 8 * 3600  # 07:00
    local[0] = 3 * 3600.0
    assert rules.level() == "dim"
    local[0] = 7 * 3600.0
    assert rules.level() == "on"
    off_at_night = policy(clock, night=parse_window("23:00-07:00"), local_time=lambda: 0.0)
    assert off_at_night.level() == "off"


def test_night_window_within_a_day() -> None:
    clock = Clock()
    local = [12 * 3600.0]
    rules = policy(clock, night=parse_window("01:30-05:00"), local_time=lambda: local[0])
    rules.agent_wrote()
    assert rules.level() == "on"
    local[0] = 1.5 * 3600
    assert rules.level() == "off"
    local[0] = 5 * 3600 - 1
    assert rules.level() == "off"
    local[0] = 5 * 3600
    assert rules.level() == "on"


# --- through the daemon ----------------------------------------------------------------------


@pytest.fixture
def backlight(tmp_path: Path) -> Path:
    return make_backlight(tmp_path / "backlight")


def display_config(backlight: Path, **values: Any) -> dict[str, Any]:
    return {
        "driver": "sysfs",
        "backlight_dir": str(backlight.parent),
        "brightness": 100,
        "dim_brightness": DIM,
        **values,
    }


def panel(backlight: Path) -> Callable[[str, str], Callable[[], Awaitable[bool]]]:
    """``panel(bl_power, brightness)`` → a check that the sysfs files say so."""

    def expect(bl_power: str, brightness: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return (await read(backlight / "bl_power"), await read(backlight / "brightness")) == (
                bl_power,
                brightness,
            )

        return check

    return expect


async def test_agent_activity_wakes_the_display_and_quiet_dims_then_switches_off(
    faced_client, backlight: Path
) -> None:
    client = await faced_client(
        display=display_config(backlight, idle_dim_after_s=3.0, idle_off_after_s=5.0)
    )
    expect = panel(backlight)
    # Nobody there, no agent: dimmed, then off. Off keeps the dim level in brightness, so
    # seeing (4, dim) proves the dim step came first.
    await until(expect("4", DIM_RAW), seconds=30)
    status = await (await client.get("/api/display")).json()
    assert (status["policy"], status["power"], status["manual"]) == ("off", False, False)

    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    await until(expect("0", FULL_RAW), seconds=10)
    assert (await (await client.get("/api/display")).json())["policy"] == "on"

    await until(expect("4", DIM_RAW), seconds=30)  # quiet again
    assert (await client.post("/api/speak", json={"text": "hello"})).status == 200
    await until(expect("0", FULL_RAW), seconds=10)


async def test_sleeping_dims(faced_client, backlight: Path) -> None:
    client = await faced_client(
        display=display_config(backlight, idle_dim_after_s=0, idle_off_after_s=0)
    )
    expect = panel(backlight)
    await until(expect("0", FULL_RAW), seconds=30)
    assert (await client.post("/api/state", json={"state": "sleeping"})).status == 200
    await until(expect("0", DIM_RAW), seconds=10)
    assert (await (await client.get("/api/display")).json())["policy"] == "dim"
    assert (await client.post("/api/state", json={"state": "idle"})).status == 200
    await until(expect("0", FULL_RAW), seconds=10)


async def test_auto_sleep_after_the_last_agent_leaves_dims(faced_client, backlight: Path) -> None:
    client = await faced_client(
        display=display_config(backlight, idle_dim_after_s=0, idle_off_after_s=0),
        face={"auto_sleep_s": 0.2},
    )
    expect = panel(backlight)
    await until(expect("0", FULL_RAW), seconds=30)
    async with client.ws_connect("/ws/agent") as agent:
        await agent.send_str(json.dumps({"state": "listening"}))
        await until(lambda: _json_field(client, "/api/state", "state", "listening"), seconds=10)
    await until(expect("0", DIM_RAW), seconds=10)  # the face went to sleep on its own


async def _json_field(client: Any, path: str, field: str, value: Any) -> bool:
    body = await (await client.get(path)).json()
    return bool(body.get(field) == value)


async def test_a_manual_change_holds_until_the_policy_level_changes(
    faced_client, backlight: Path
) -> None:
    client = await faced_client(
        display=display_config(backlight, idle_dim_after_s=5.0, idle_off_after_s=0)
    )
    expect = panel(backlight)
    await until(expect("0", FULL_RAW), seconds=30)
    response = await client.put("/api/display", json={"power": False})
    assert response.status == 200
    status = await response.json()
    assert (status["power"], status["manual"], status["policy"]) == (False, True, "on")
    # Agent activity keeps the policy at "on": no change of level, so the manual off holds.
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    seen: list[tuple[bool, bool, str]] = []

    async def dimmed() -> bool:
        body = await (await client.get("/api/display")).json()
        seen.append((body["power"], body["manual"], body["policy"]))
        return bool(body["policy"] == "dim" and not body["manual"] and body["power"])

    await until(dimmed, seconds=30)
    before_dim = [s for s in seen if s[2] == "on"]
    assert before_dim and all(s == (False, True, "on") for s in before_dim)
    await until(expect("0", DIM_RAW), seconds=10)


def _write_visit_clip(path: Path, face_s: float, empty_s: float) -> Path:
    """A person in front of the camera for ``face_s``, then an empty room for ``empty_s``
    (MJPEG, looped by the file camera)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), DEFAULT_FPS, DEFAULT_SIZE)
    assert writer.isOpened()
    try:
        for photo, seconds in (
            (data.load_rgb("tongue.jpg"), face_s),
            # An empty room: a blank wall. (Not the cat photograph: the detector finds a
            # face in it now and then, and a single find keeps presence alive.)
            (np.full((480, 640, 3), 120, np.uint8), empty_s),
        ):
            for frame in synthetic_frames(photo, round(seconds * DEFAULT_FPS)):
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


@pytest.fixture(scope="module")
def visit_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_visit_clip(tmp_path_factory.mktemp("clips") / "visit.avi", 5.0, 8.0)


async def test_presence_keeps_the_display_on_and_a_return_wakes_it(
    faced_client, backlight: Path, visit_clip: Path
) -> None:
    off_after = 2.0
    client = await faced_client(
        camera={"source": f"file:{visit_clip}"},
        display=display_config(backlight, idle_dim_after_s=1.0, idle_off_after_s=off_after),
    )
    expect = panel(backlight)
    checked_while_present = False
    arrived_at: float | None = None
    phase = "wait-left"
    async with client.ws_connect("/ws/viewer") as viewer:
        deadline = time.monotonic() + 90
        while phase != "done" or not checked_while_present:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"stuck in phase {phase}"
            message = await viewer.receive(timeout=remaining)
            assert message.type == WSMsgType.TEXT
            event = json.loads(message.data)
            if event["type"] != "presence":
                continue
            if event["event"] == "arrived":
                arrived_at = time.monotonic()
            if (
                event["event"] == "moved"
                and arrived_at is not None
                and time.monotonic() - arrived_at > off_after + 0.5
                and not checked_while_present
            ):
                # Present longer than idle_off_after_s: still on, at full brightness.
                status = await (await client.get("/api/display")).json()
                assert (status["policy"], status["power"]) == ("on", True)
                assert await read(backlight / "brightness") == FULL_RAW
                checked_while_present = True
            if phase == "wait-left" and event["event"] == "left":
                # The room is empty: dim, then off (brightness keeps the dim level).
                await until(expect("4", DIM_RAW), seconds=30)
                phase = "wait-return"
            elif phase == "wait-return" and event["event"] == "arrived":
                await until(expect("0", FULL_RAW), seconds=10)
                phase = "done"


async def power_only_display(
    faced_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    preamble: str = "",
    **timers: float,
) -> tuple[Any, Path]:
    """faced with the wlr-randr driver (no backlight) and a fake wlr-randr on PATH that
    runs ``preamble`` first and logs each call it serves; (client, that log)."""
    tools = tmp_path / "bin"
    log = tmp_path / "wlr-randr.log"
    await asyncio.to_thread(tools.mkdir)
    await asyncio.to_thread(write_tool, tools, "wlr-randr", preamble + WLR_RANDR.format(log=log))
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    client = await faced_client(
        display={
            "driver": "wlr-randr",
            "output": "HDMI-A-1",
            "wayland_display": "wayland-1",
            "backlight_dir": str(tmp_path / "none"),
            **timers,
        }
    )
    return client, log


async def test_a_power_only_display_follows_the_policy_through_its_tool(
    faced_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, log = await power_only_display(
        faced_client, tmp_path, monkeypatch, idle_dim_after_s=1.0, idle_off_after_s=3.0
    )

    async def last_call(words: str) -> bool:
        calls = (await read(log)).splitlines() if await asyncio.to_thread(log.exists) else []
        return bool(calls) and calls[-1].endswith(words)

    # Dim has no brightness to lower here: the display stays on, then goes off.
    await until(lambda: last_call("--output HDMI-A-1 --off"), seconds=30)
    # A refused manual change changes nothing, not even who is in charge.
    response = await client.put("/api/display", json={"brightness": 50})
    assert response.status == 409
    assert (await (await client.get("/api/display")).json())["manual"] is False
    assert (await client.post("/api/state", json={"state": "listening"})).status == 200
    await until(lambda: last_call("--output HDMI-A-1 --on"), seconds=10)


def _window_around_now(hours: int = 1) -> str:
    """A night window (local time, HH:MM-HH:MM) that holds the present moment."""
    import datetime  # noqa: PLC0415

    now = datetime.datetime.now()
    start, end = now - datetime.timedelta(hours=hours), now + datetime.timedelta(hours=hours)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.parametrize(
    ("night_level", "bl_power", "brightness"), [("dim", "0", DIM_RAW), ("off", "4", FULL_RAW)]
)
async def test_the_night_window_holds_the_display_down_whatever_agents_do(
    faced_client, backlight: Path, night_level: str, bl_power: str, brightness: str
) -> None:
    client = await faced_client(
        display=display_config(
            backlight,
            idle_dim_after_s=0,
            idle_off_after_s=0,
            night=_window_around_now(),
            night_level=night_level,
        )
    )
    expect = panel(backlight)
    # Idle steps are off and nobody is quiet long: only the night window lowers it.
    await until(expect(bl_power, brightness), seconds=30)
    assert (await (await client.get("/api/display")).json())["policy"] == night_level
    assert (await client.post("/api/speak", json={"text": "hello"})).status == 200
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    await asyncio.sleep(0.5)  # what an agent's activity would have done by now
    assert await expect(bl_power, brightness)()
    assert (await (await client.get("/api/display")).json())["policy"] == night_level
    # A person may still switch it on by hand for now (the API is theirs).
    assert (await client.put("/api/display", json={"power": True, "brightness": 100})).status == 200
    await until(expect("0", FULL_RAW), seconds=10)


async def test_the_policy_applies_its_level_again_when_something_else_changed_the_screen(
    faced_client, backlight: Path
) -> None:
    """A restarted kiosk compositor brings its output back on behind faced's back: the level
    that held is applied again every display.reapply_s — but never over a manual change."""
    client = await faced_client(
        display=display_config(backlight, idle_dim_after_s=0, idle_off_after_s=0.2, reapply_s=0.5)
    )
    expect = panel(backlight)
    await until(expect("4", FULL_RAW), seconds=30)
    await asyncio.to_thread((backlight / "bl_power").write_text, "0\n")  # someone else
    await until(expect("4", FULL_RAW), seconds=10)
    assert (await (await client.get("/api/display")).json())["policy"] == "off"

    assert (await client.put("/api/display", json={"power": True})).status == 200
    await until(expect("0", FULL_RAW), seconds=30)
    await asyncio.sleep(1.5)  # three reapply periods: a manual change is left alone
    assert await expect("0", FULL_RAW)()
    assert (await (await client.get("/api/display")).json())["manual"] is True


async def test_a_failed_change_is_retried_soon_then_less_often(
    faced_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At boot faced is up before the kiosk compositor: its first change fails. The retry
    comes after a second (then 2, 4, … up to 15 s), so the screen follows the policy soon
    after the compositor appears instead of 15 s later."""
    ready = tmp_path / "compositor-up"
    attempts = tmp_path / "attempts.log"
    client, log = await power_only_display(
        faced_client,
        tmp_path,
        monkeypatch,
        preamble=(
            f'echo "$*" >> "{attempts}"\n'
            f'[ -e "{ready}" ] || {{ echo "failed to connect to display" >&2; exit 1; }}\n'
        ),
        idle_dim_after_s=0,
        idle_off_after_s=0.2,
    )

    async def off_failed() -> bool:
        component = (await (await client.get("/health")).json())["components"]["display"]
        tried = await read(attempts) if await asyncio.to_thread(attempts.exists) else ""
        return component["status"] == "error" and "--output HDMI-A-1 --off" in tried

    await until(off_failed, seconds=10)  # the policy's change failed: no compositor yet
    await asyncio.to_thread(ready.touch)  # the compositor is up
    began = time.monotonic()

    async def switched_off() -> bool:
        calls = (await read(log)).splitlines() if await asyncio.to_thread(log.exists) else []
        return any(call.endswith("--output HDMI-A-1 --off") for call in calls)

    await until(switched_off, seconds=10)
    # The first retries come 1, 2 and 4 s after the first failure: well before 15 s.
    assert time.monotonic() - began < 8.0
    assert (await (await client.get("/api/display")).json())["power"] is False
