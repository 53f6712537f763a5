"""`faced mcp` under the MCP SDK's own client, against the real daemon.

In-process (``mcp.Client(server)``) for every tool, bad arguments, a daemon that is down and
a wrong key; over stdio (``python -m faced mcp`` spawned by the SDK's client) against a
``faced serve`` process; and the one line a machine without the SDK gets. The daemon is the
real app on loopback (``faced_client``) or the real process (``run_faced``); its camera, where
one is needed, is the ``file:`` source playing a clip of a test photograph.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import rich.console  # noqa: F401  # imported now: the SDK imports it in build_server, and

# rich's import reads the cwd, a blocking call blockbuster refuses inside the event loop.
from mcp import Client, StdioServerParameters
from mcp_types import CallToolResult

from faced.client import FaceClient
from faced.mcp_server import FacedTools, build_server
from faced.vision.synthetic import write_clip
from tests import data
from tests.api.test_person import STILL, _comes_and_goes
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import until

KEY = "mcp-test-key"
OPEN_FACE_TOOLS = {
    "set_face_state": {
        "state",
        "emotion",
        "emotionSecondary",
        "emotionBlend",
        "intensity",
        "amplitude",
        "color",
    },
    "set_face_look": {"x", "y"},
    "face_wink": {"eye", "duration"},
    "face_speak": {"text", "duration"},
    "set_face_progress": {"progress", "state", "text"},
    "face_emote": {"emotion", "intensity", "emotionSecondary", "emotionBlend"},
    "get_face_state": set(),
    "face_reset": set(),
}
FACED_TOOLS = {
    "get_person": set(),
    "wait_for_person": {"timeout_s", "attention"},
    "wait_for_event": {"kinds", "timeout_s"},
    "look_at_person": set(),
    "analyze_image": {"path", "image_base64", "landmarks", "num_faces"},
    "camera_snapshot": set(),
    "record_take": {"seconds", "label"},
    "job_status": {"job_id"},
    "list_jobs": {"limit", "offset"},
}


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb("tongue.jpg"), directory / "face.avi", 60)


@contextlib.asynccontextmanager
async def mcp_of(daemon: Any, api_key: str | None = None) -> AsyncIterator[Client]:
    """An in-process MCP client of the server whose tools call ``daemon`` (a test client
    of the real app, or a URL). Entered in the test's own task: the SDK's task groups must
    be left in the task that entered them."""
    url = daemon if isinstance(daemon, str) else str(daemon.make_url("/"))
    async with FaceClient(url, api_key=api_key) as face:
        tools = FacedTools(face, api_key)
        try:
            async with Client(build_server(tools)) as client:
                yield client
        finally:
            await tools.close()


def text(result: CallToolResult) -> str:
    assert len(result.content) == 1, result.content
    return str(result.content[0].text)  # type: ignore[union-attr]


async def call(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text(result)
    return text(result)


async def refused(client: Client, name: str, **arguments: Any) -> str:
    result = await client.call_tool(name, arguments)
    assert result.is_error, text(result)
    return text(result)


async def state(daemon: Any) -> dict[str, Any]:
    response = await daemon.get("/api/state")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


# --- the tools and their parameters ---------------------------------------------------------


async def test_the_tools_are_open_faces_eight_and_fadeds_own(faced_client: Any) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        expected = OPEN_FACE_TOOLS | FACED_TOOLS
        assert set(tools) == set(expected)
        for name, parameters in expected.items():
            assert set(tools[name].input_schema.get("properties", {})) == parameters, name
            assert tools[name].description, name
        assert tools["set_face_state"].input_schema["required"] == ["state"]
        assert tools["set_face_progress"].input_schema["required"] == ["progress"]


async def test_open_face_tools_change_the_daemon_state(faced_client: Any) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        await call(
            client,
            "set_face_state",
            state="thinking",
            emotion="happy",
            emotionSecondary="surprised",
            emotionBlend=0.25,
            intensity=0.5,
            amplitude=0.3,
            color="#112233",
        )
        now = await state(daemon)
        assert (now["state"], now["emotion"], now["emotionSecondary"]) == (
            "thinking",
            "happy",
            "surprised",
        )
        assert (now["emotionBlend"], now["intensity"], now["amplitude"], now["color"]) == (
            0.25,
            0.5,
            0.3,
            "#112233",
        )
        await call(client, "set_face_look", x=0.5, y=-0.25)
        assert (await state(daemon))["lookAt"] == {"x": 0.5, "y": -0.25}
        await call(client, "face_speak", text="hello there", duration=1500)
        now = await state(daemon)
        assert (now["state"], now["textDuration"]) == ("speaking", 1500)
        history = await (await daemon.get("/api/history")).json()
        shown = [e["data"]["text"] for e in history["entries"] if e["type"] == "text"]
        assert shown == ["hello there"]  # text is shown, not kept in the state
        await call(client, "set_face_progress", progress=0.4, state="working", text="building")
        now = await state(daemon)
        assert (now["progress"], now["state"]) == (0.4, "working")
        history = await (await daemon.get("/api/history")).json()
        assert [e["data"]["text"] for e in history["entries"] if e["type"] == "text"][-1] == (
            "building"
        )
        await call(client, "set_face_progress", progress=None)
        assert (await state(daemon))["progress"] is None
        await call(client, "face_emote", emotion="proud", intensity=0.7)
        now = await state(daemon)
        assert (now["emotion"], now["intensity"], now["state"]) == ("proud", 0.7, "working")
        shown = await call(client, "get_face_state")
        assert '"emotion": "proud"' in shown
        assert await call(client, "face_reset") == "Face reset to defaults"
        now = await state(daemon)
        assert (now["state"], now["emotion"], now["progress"]) == ("idle", "neutral", None)


async def test_a_wink_opens_again_after_its_duration(faced_client: Any) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        assert await call(client, "face_wink", eye="right", duration=150) == (
            "Winked right eye for 150ms"
        )
        assert (await state(daemon))["winkRight"] == 1.0

        async def open_again() -> bool:
            return (await state(daemon))["winkRight"] == 0.0

        await until(open_again, what="the eye open again")


@pytest.mark.parametrize(
    ("name", "arguments", "named"),
    [
        ("set_face_state", {"state": "dancing"}, "state"),
        ("set_face_state", {"emotion": "happy"}, "state"),
        ("set_face_state", {"state": "idle", "color": "red"}, "color"),
        ("set_face_state", {"state": "idle", "intensity": 2}, "intensity"),
        ("set_face_look", {"x": 3, "y": 0}, "x"),
        ("face_wink", {"eye": "middle"}, "eye"),
        ("face_wink", {"eye": "left", "duration": 50}, "duration"),
        ("face_speak", {"text": "x" * 501}, "text"),
        ("set_face_progress", {"progress": 1.5}, "progress"),
        ("face_emote", {"emotion": "bored"}, "emotion"),
        ("wait_for_person", {"timeout_s": -1}, "timeout_s"),
        ("wait_for_event", {"kinds": ["jumped"]}, "kinds"),
        ("analyze_image", {"path": "a.jpg", "num_faces": 9}, "num_faces"),
        ("record_take", {"seconds": 601}, "seconds"),
        ("record_take", {"seconds": 2, "label": "a\nb"}, "label"),
        ("list_jobs", {"limit": 0}, "limit"),
    ],
)
async def test_bad_arguments_are_a_tool_error_and_leave_the_daemon_alone(
    faced_client: Any, name: str, arguments: dict[str, Any], named: str
) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        before = await state(daemon)
        history = await (await daemon.get("/api/history")).json()
        message = await refused(client, name, **arguments)
        assert "validation error" in message and named in message
        assert await state(daemon) == before
        assert await (await daemon.get("/api/history")).json() == history


async def test_an_unknown_tool_is_a_tool_error(faced_client: Any) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        assert "Unknown tool" in await refused(client, "self_destruct")


# --- the daemon down, the key ---------------------------------------------------------------


async def test_a_daemon_that_is_down_is_a_clear_error_at_once(faced_client: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with mcp_of(url) as client:
        # A guard, not a timing: each call must fail on the refused connection, not wait out
        # the tool's own timeout (wait_for_person's 600 s).
        async with asyncio.timeout(30):
            for name, arguments in (
                ("set_face_state", {"state": "idle"}),
                ("get_face_state", {}),
                ("get_person", {}),
                ("wait_for_person", {"timeout_s": 600}),
                ("wait_for_event", {"timeout_s": 600}),
                ("camera_snapshot", {}),
            ):
                message = await refused(client, name, **arguments)
                assert f"faced at {url} did not answer" in message, message


async def test_a_wrong_key_is_refused_and_the_right_one_works(faced_client: Any) -> None:
    daemon = await faced_client(auth={"api_key": KEY})
    async with mcp_of(daemon, "wrong") as client:
        message = await refused(client, "set_face_state", state="alert")
        assert "403" in message and "invalid API key" in message and "FACE_API_KEY" in message
        assert (await state(daemon))["state"] == "idle"
    daemon = await faced_client(auth={"api_key": KEY})
    async with mcp_of(daemon, KEY) as good:
        await call(good, "set_face_state", state="alert")
        assert (await state(daemon))["state"] == "alert"


async def test_no_key_where_one_is_needed_says_how_to_give_it(faced_client: Any) -> None:
    daemon = await faced_client(auth={"api_key": KEY})
    async with mcp_of(daemon) as client:
        message = await refused(client, "face_reset")
        assert "401" in message and "--api-key or FACE_API_KEY" in message


# --- the camera: snapshots and analysis -----------------------------------------------------


def _camera(clip: Path, **extra: Any) -> dict[str, Any]:
    return {"source": f"file:{clip}", "tracking": False, **extra}


async def _a_frame(daemon: Any) -> None:
    from faced.keys import LIVE_KEY  # noqa: PLC0415

    camera = daemon.app[LIVE_KEY].camera
    await until(lambda: camera.latest is not None, what="a camera frame")


async def test_camera_snapshot_refuses_unless_the_owner_allows_it(
    faced_client: Any, face_clip: Path
) -> None:
    daemon = await faced_client(camera=_camera(face_clip))
    async with mcp_of(daemon) as client:
        await _a_frame(daemon)
        message = await refused(client, "camera_snapshot")
        assert "camera.snapshots = true" in message


async def test_camera_snapshot_is_an_mcp_image_with_the_key(
    faced_client: Any, face_clip: Path
) -> None:
    daemon = await faced_client(camera=_camera(face_clip, snapshots=True), auth={"api_key": KEY})
    await _a_frame(daemon)
    async with mcp_of(daemon, KEY) as client:
        result = await client.call_tool("camera_snapshot", {})
    assert not result.is_error
    [image] = result.content
    assert image.type == "image" and image.mime_type == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(image.data), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[2] == 3
    async with mcp_of(daemon, "nope") as wrong:
        assert "invalid API key" in await refused(wrong, "camera_snapshot")


async def test_analyze_image_by_path_and_by_base64(faced_client: Any, tmp_path: Path) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        photo = await asyncio.to_thread(data.path, "tongue.jpg")
        by_path = json.loads(await call(client, "analyze_image", path=str(photo)))
        assert by_path["face_found"] and by_path["faces"][0]["blendshapes"]
        assert not by_path["faces"][0].get("landmarks")
        raw = await asyncio.to_thread(photo.read_bytes)
        encoded = base64.b64encode(raw).decode()
        by_data = json.loads(
            await call(client, "analyze_image", image_base64=encoded, landmarks=True)
        )
        assert by_data["faces"][0]["bbox"] == by_path["faces"][0]["bbox"]
        assert len(by_data["faces"][0]["landmarks"]) == 478
        missing = await refused(client, "analyze_image", path=str(tmp_path / "none.jpg"))
        assert "cannot read" in missing and "none.jpg" in missing
        assert "not valid base64" in await refused(client, "analyze_image", image_base64="@@")
        assert "either path or image_base64" in await refused(client, "analyze_image")
        not_an_image = await refused(
            client, "analyze_image", image_base64=base64.b64encode(b"hello").decode()
        )
        assert "answered 4" in not_an_image


# --- takes (jobs) from the camera -----------------------------------------------------------


async def test_record_take_then_job_status_until_done_and_list_jobs(
    faced_client: Any, face_clip: Path, tmp_path: Path
) -> None:
    daemon = await faced_client(
        camera=_camera(face_clip),
        auth={"api_key": KEY},
        server={"state_dir": str(tmp_path / "state")},
        jobs={},
    )
    await _a_frame(daemon)
    async with mcp_of(daemon, KEY) as client:
        take = json.loads(await call(client, "record_take", seconds=1, label="mcp take"))
        assert take["source"] == "camera" and take["label"] == "mcp take"
        assert take["status"] == "pending" and take["recording"]

        async def done() -> bool:
            job = json.loads(await call(client, "job_status", job_id=take["id"]))
            return bool(job["status"] in ("done", "failed"))

        await until(done, 60, interval=0.2, what="the take done")
        job = json.loads(await call(client, "job_status", job_id=take["id"]))
        assert job["status"] == "done" and job["result"]["faces_found"] > 0, job
        assert job["result"]["csv_url"].endswith("/csv")
        listed = json.loads(await call(client, "list_jobs"))
        assert [j["id"] for j in listed["jobs"]] == [take["id"]] and listed["total"] == 1
        unknown = await refused(client, "job_status", job_id="f" * 32)
        assert "answered 404" in unknown and "no job" in unknown
    async with mcp_of(daemon) as keyless:  # camera-derived: the key is needed
        assert "401" in await refused(keyless, "record_take", seconds=1)
        assert "401" in await refused(keyless, "list_jobs")


# --- over stdio, as an agent's host runs it -------------------------------------------------


def _mcp_command(url: str | None = None, *args: str) -> StdioServerParameters:
    env = {"PYTHONPATH": str(REPO_ROOT)}
    if url is not None:
        env["FACE_URL"] = url
    return StdioServerParameters(
        command=sys.executable, args=["-m", "faced", "mcp", *args], env=env
    )


async def test_stdio_server_drives_a_real_daemon(run_faced: Any, tmp_path: Path) -> None:
    config = f'[server]\nstate_dir = "{tmp_path / "state"}"\n[auth]\napi_key = "{KEY}"\n'
    server = await run_faced(config_text=config)
    # FACE_URL from the environment, the key from the flag.
    async with Client(_mcp_command(server.url, "--api-key", KEY)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == set(OPEN_FACE_TOOLS) | set(FACED_TOOLS)
        await call(client, "set_face_state", state="listening", emotion="excited")
        assert '"state": "listening"' in await call(client, "get_face_state")
        assert "validation error" in await refused(client, "set_face_look", x=9, y=0)
    async with FaceClient(server.url, api_key=KEY) as face:
        now = await face.state()
    assert (now.state, now.emotion) == ("listening", "excited")


async def test_stdio_server_reports_a_daemon_that_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with Client(_mcp_command(url)) as client:
        assert "did not answer" in await refused(client, "get_face_state")


def test_without_the_sdk_faced_mcp_says_how_to_install_it() -> None:
    # A finder that refuses the SDK's packages stands in for a machine without the extra.
    program = (
        "import sys\n"
        "class NoSdk:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('mcp', 'mcp_types'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoSdk())\n"
        "from faced.cli import main\n"
        "sys.exit(main(['mcp']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == ["faced mcp needs the MCP SDK: pip install 'faced[mcp]'"]


def test_a_url_that_is_not_http_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faced", "mcp", "--url", "box:9999"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "faced mcp: --url must start with http:// or https://, not 'box:9999'"
    ]


# --- the person tools, on a live camera -----------------------------------------------------


@pytest.fixture(scope="module")
def person_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("person-clips")
    return {
        "still": write_clip(data.load_rgb("tongue.jpg"), directory / "still.avi", 30, motion=STILL),
        "comes-and-goes": _comes_and_goes(directory / "comes-and-goes.avi"),
        "nobody": write_clip(data.load_rgb(data.NO_FACE_PHOTO), directory / "cat.avi", 30),
    }


async def test_person_tools_see_someone_looking_at_the_box(
    faced_client: Any, person_clips: dict[str, Path]
) -> None:
    daemon = await faced_client(camera={"source": f"file:{person_clips['still']}"})
    async with mcp_of(daemon) as client:
        waited = json.loads(await call(client, "wait_for_person", timeout_s=60, attention=True))
        assert waited["present"] and waited["attention"] and waited["people"] == 1
        now = json.loads(await call(client, "get_person"))
        assert now["present"] and 0.1 < now["distance_m"] < 1.5
        looked = json.loads(await call(client, "look_at_person"))
        shown = (await state(daemon))["lookAt"]
        assert shown == looked["lookAt"]
        assert shown["x"] == pytest.approx(-looked["position"]["x"])
        assert shown["y"] == pytest.approx(looked["position"]["y"])


async def test_wait_for_event_returns_the_next_of_its_kinds(
    faced_client: Any, person_clips: dict[str, Path]
) -> None:
    # The clip loops: 2 s of a face, 4 s of nobody.
    daemon = await faced_client(camera={"source": f"file:{person_clips['comes-and-goes']}"})
    async with mcp_of(daemon) as client:
        left = json.loads(await call(client, "wait_for_event", kinds=["left"], timeout_s=60))
        assert left["event"] == "left" and left["present"] is False
        back = json.loads(await call(client, "wait_for_event", kinds=["arrived"], timeout_s=60))
        assert back["event"] == "arrived" and back["present"] and back["ts"] > left["ts"]


async def test_person_waits_time_out_with_a_clear_error(
    faced_client: Any, person_clips: dict[str, Path]
) -> None:
    daemon = await faced_client(camera={"source": f"file:{person_clips['nobody']}"})
    async with mcp_of(daemon) as client:
        message = await refused(client, "wait_for_person", timeout_s=1, attention=True)
        assert message.endswith("timed out: nobody looked at the box within 1 s")
        message = await refused(client, "wait_for_event", kinds=["speaking_start"], timeout_s=0.5)
        assert message.endswith("timed out: no speaking_start event within 0.5 s")
        assert "nobody is in front of the box" in await refused(client, "look_at_person")
        assert not json.loads(await call(client, "get_person"))["present"]


async def test_person_tools_without_a_camera_say_so(faced_client: Any) -> None:
    daemon = await faced_client()
    async with mcp_of(daemon) as client:
        for name in ("get_person", "wait_for_person", "wait_for_event", "look_at_person"):
            message = await refused(client, name)
            assert "answered 503" in message and "camera" in message, (name, message)
