"""faced.client against the real daemon on loopback: every method, JSON and msgpack, errors.

The daemon is the real app (``faced_client``) or the real ``faced serve`` process
(``run_faced``, for the daemon going down and coming back); the client is the one agents
use. Results are faced's schema types, so the tests read attributes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from faced.client import FaceClient, FacedError
from faced.client.wire import MAX_EVENT_BYTES, MAX_SOCKET_MESSAGE_BYTES
from faced.schemas.analysis import Analysis
from faced.schemas.face_state import (
    AudioDoneMessage,
    AudioMessage,
    AudioSeqMessage,
    FaceState,
    StateEntry,
    StateMessage,
    TextEntry,
)
from faced.schemas.health import Health
from faced.schemas.tracking import TrackingResult
from faced.vision.synthetic import write_clip
from tests import data
from tests.conftest import free_port

KEY = "s3cret-key"
ENCODINGS = ("json", "msgpack")
Client = TestClient[Any, Any]
M = TypeVar("M")


def _url(client: Client) -> str:
    return str(client.make_url("/"))


def _wav(seconds: float = 0.05, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return buffer.getvalue()


async def _next_of(stream: AsyncIterator[Any], kind: type[M], seconds: float = 10.0) -> M:
    """The next message of ``kind`` on ``stream`` (others skipped)."""
    async with asyncio.timeout(seconds):
        async for message in stream:
            if isinstance(message, kind):
                return message
    raise AssertionError(f"the stream ended before a {kind.__name__}")


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb("tongue.jpg"), directory / "face.avi", 60)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_state_set_state_and_history(faced_client: Any, encoding: str) -> None:
    client = await faced_client()
    async with FaceClient(_url(client), encoding=encoding) as face:  # type: ignore[arg-type]
        state = await face.state()
        assert isinstance(state, FaceState) and state.state == "idle"
        merged = await face.set_state(
            state="thinking", emotion="happy", look_at={"x": 0.5}, emotionSecondary="proud"
        )
        assert (merged.state, merged.emotion, merged.emotion_secondary) == (
            "thinking",
            "happy",
            "proud",
        )
        assert merged.look_at.x == 0.5 and merged.look_at.y == 0.0
        assert (await face.state()).state == "thinking"
        await face.set_state(detail="step 2", intensity=7)  # clamped, as Open Face does
        assert (await face.state()).intensity == 1.0
        reset = await face.set_state(type="reset")
        assert reset.state == "idle" and reset.emotion == "neutral"
        entries = await face.history()
        assert any(isinstance(e, StateEntry) and e.data.state == "thinking" for e in entries)
        assert all(isinstance(e.ts, int) for e in entries)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_speak_audio_and_done_reach_viewers(faced_client: Any, encoding: str) -> None:
    client = await faced_client()
    wav = _wav()
    async with FaceClient(_url(client), encoding=encoding) as face:  # type: ignore[arg-type]
        viewer = face.viewer_messages()
        async with contextlib.aclosing(viewer):
            first = await _next_of(viewer, StateMessage)
            assert first.state == "idle"
            seq = await face.speak("Hello there", emotion="happy")
            assert isinstance(seq, int) and seq >= 1
            announced = await _next_of(viewer, AudioSeqMessage)
            assert announced.seq == seq and announced.expect_audio
            assert await face.send_audio(wav) == seq
            chunk = await _next_of(viewer, AudioMessage)
            assert chunk.seq == seq and chunk.format == "wav"
            assert await face.send_audio(wav, seq=seq) == seq  # as JSON/msgpack, base64
            assert (await _next_of(viewer, AudioMessage)).seq == seq
            assert await face.audio_done() == seq
            assert (await _next_of(viewer, AudioDoneMessage)).seq == seq
            assert await face.audio_done(seq) == seq
        entries = await face.history()
        assert any(isinstance(e, TextEntry) and e.data.text == "Hello there" for e in entries)
        assert (await face.state()).state == "speaking"
        quiet = await face.speak(expect_audio=False, state="listening")
        assert quiet == seq + 1


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_health_and_analyze(faced_client: Any, encoding: str) -> None:
    client = await faced_client()
    photo = await asyncio.to_thread(lambda: data.path("tongue.jpg").read_bytes())
    async with FaceClient(_url(client), encoding=encoding) as face:  # type: ignore[arg-type]
        health = await face.health()
        assert isinstance(health, Health) and health.ok and health.status == "ok"
        assert health.components["api"].status == "ok"
        analysis = await face.analyze(photo)
        assert isinstance(analysis, Analysis) and analysis.face_found
        assert analysis.faces and analysis.faces[0].landmarks is None
        detailed = await face.analyze(photo, landmarks=True, num_faces=2)
        assert detailed.faces and detailed.faces[0].landmarks is not None
        assert len(detailed.faces[0].landmarks) == 478
        with pytest.raises(FacedError) as refused:
            await face.analyze(b"this is not an image")
        assert refused.value.status == 415 and "JPEG" in refused.value.message
        with pytest.raises(FacedError) as bad_option:
            await face.analyze(photo, num_faces=99)
        assert bad_option.value.status == 400
        assert bad_option.value.message == "num_faces must be 1-8, got 99"


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_bad_field_is_a_400_with_the_daemons_message(
    faced_client: Any, encoding: str
) -> None:
    client = await faced_client()
    async with FaceClient(_url(client), encoding=encoding) as face:  # type: ignore[arg-type]
        with pytest.raises(FacedError) as caught:
            await face.set_state(state="dancing")
        error = caught.value
        assert error.status == 400
        assert error.message.startswith("invalid value for 'state': 'dancing'; allowed: idle")
        assert error.details["field"] == "state" and "thinking" in error.details["allowed"]
        assert str(error) == f"400: {error.message}"
        with pytest.raises(FacedError) as speak:
            await face.speak("hi", emotion="ecstatic")
        assert speak.value.status == 400 and speak.value.details["field"] == "emotion"
        assert (await face.state()).state == "idle"  # nothing changed


async def test_key_missing_is_401_wrong_is_403(faced_client: Any) -> None:
    client = await faced_client(auth={"api_key": KEY})
    url = _url(client)
    async with FaceClient(url) as anonymous, FaceClient(url, api_key="wrong") as wrong:
        assert (await anonymous.state()).state == "idle"  # public
        with pytest.raises(FacedError) as missing:
            await anonymous.set_state(state="thinking")
        assert missing.value.status == 401 and missing.value.message
        with pytest.raises(FacedError) as refused:
            await wrong.set_state(state="thinking")
        assert refused.value.status == 403
        with pytest.raises(FacedError) as socket:  # the refusal of an upgrade, worded
            async with wrong.agent() as agent:
                await agent.send(state="thinking")
        assert socket.value.status == 403 and socket.value.message == refused.value.message
    async with FaceClient(url, api_key=KEY, encoding="msgpack") as keyed:
        assert (await keyed.set_state(state="working")).state == "working"


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_agent_socket_sends_confirmed_updates(faced_client: Any, encoding: str) -> None:
    client = await faced_client()
    face = FaceClient(_url(client), encoding=encoding)  # type: ignore[arg-type]
    async with face, face.agent() as agent:
        await agent.send(state="listening", emotion="happy", look_at={"y": -0.5})
        state = await face.state()
        assert (state.state, state.emotion, state.look_at.y) == ("listening", "happy", -0.5)
        with pytest.raises(FacedError) as caught:
            await agent.send(emotion="gleeful")
        assert caught.value.status == 400 and caught.value.details["field"] == "emotion"
        assert "allowed" in caught.value.message
        await agent.send(state="thinking")  # the socket stays open after a refusal
        assert (await face.state()).state == "thinking"
        assert (await face.health()).agents == 1


async def test_tracking_and_its_refusals(faced_client: Any, face_clip: Path) -> None:
    no_camera = await faced_client()
    async with FaceClient(_url(no_camera)) as face:
        with pytest.raises(FacedError) as caught:
            await anext(face.tracking())
        assert caught.value.status == 503
        assert caught.value.message == "no camera: camera.source is none"
    client = await faced_client(camera={"source": f"file:{face_clip}"}, auth={"api_key": KEY})
    for encoding in ENCODINGS:
        async with FaceClient(_url(client), api_key=KEY, encoding=encoding) as face:  # type: ignore[arg-type]
            stream = face.tracking(fields=["head"], fps=30)
            async with contextlib.aclosing(stream):
                result = await _next_of(stream, TrackingResult, seconds=30)
            assert result.face_found and result.head is not None and result.blendshapes is None
            assert result.frame >= 0 and result.ts > 0
        async with FaceClient(_url(client), api_key="wrong", encoding=encoding) as stranger:  # type: ignore[arg-type]
            with pytest.raises(FacedError) as refused:
                await anext(stranger.tracking())
            assert refused.value.status == 403


async def test_daemon_down_raises_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with asyncio.timeout(10), FaceClient(url, timeout_s=5) as face:
        for call in (
            face.state,
            face.health,
            lambda: face.set_state(state="thinking"),
            lambda: anext(face.viewer_messages()),
            lambda: anext(face.person_events()),
        ):
            with pytest.raises(FacedError) as caught:
                await call()
            assert caught.value.status is None
            assert "cannot connect" in caught.value.message
        with pytest.raises(FacedError) as agent:
            async with face.agent():
                pass
        assert agent.value.status is None


async def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="encoding"):
        FaceClient("http://127.0.0.1:1", encoding="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http://"):
        FaceClient("box.local:9999")


RunFaced = Callable[..., Awaitable[Any]]


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_viewer_stream_survives_the_daemon_restarting(
    run_faced: RunFaced, encoding: str
) -> None:
    port = free_port()
    daemon = await run_faced(port=port)
    async with FaceClient(daemon.url, encoding=encoding) as face:  # type: ignore[arg-type]
        viewer = face.viewer_messages()
        async with contextlib.aclosing(viewer):
            assert (await _next_of(viewer, StateMessage)).state == "idle"
            await face.set_state(state="thinking")
            assert (await _next_of(viewer, StateMessage)).state == "thinking"
            daemon.terminate()
            assert await daemon.wait_exit() == 0
            with pytest.raises(FacedError):
                await face.state()  # down: an error at once, the stream waits
            again = await run_faced(port=port)
            greeting = await _next_of(viewer, StateMessage, seconds=30)
            assert greeting.state == "idle"  # the new daemon's greeting
            await face.set_state(state="working", emotion="proud")
            update = await _next_of(viewer, StateMessage)
            assert (update.state, update.emotion) == ("working", "proud")
            again.terminate()


def _oversized_routes(app: web.Application) -> None:
    """Test-only routes under /big/ that send one message over the client's limits."""

    async def huge_event(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + b"x" * (MAX_EVENT_BYTES + 10) + b"\n\n")
        await asyncio.sleep(30)  # the client must give up on its own
        return response

    async def huge_frame(request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str("x" * (MAX_SOCKET_MESSAGE_BYTES + 10))
        await socket.receive(timeout=30)
        return socket

    app.router.add_get("/big/api/person/events", huge_event)
    app.router.add_get("/big/ws/viewer", huge_frame)


async def test_streams_refuse_oversized_messages(faced_client: Any) -> None:
    """A message over the client's limits ends the stream with a FacedError; it is
    never held whole (the event is cut at MAX_EVENT_BYTES, the frame by aiohttp's cap)."""
    client = await faced_client(prepare=_oversized_routes)
    async with asyncio.timeout(20), FaceClient(_url(client) + "big/") as face:
        with pytest.raises(FacedError) as event:
            await anext(face.person_events(reconnect=False))
        assert event.value.status is None and "bytes" in event.value.message
        with pytest.raises(FacedError) as frame:
            await anext(face.viewer_messages(reconnect=False))
        assert frame.value.status is None and "1009" in frame.value.message
