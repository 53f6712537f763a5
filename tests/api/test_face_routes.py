"""Open Face v1 over HTTP: state, speak, audio, history — real server, real client."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from faced.schemas.face_state import EMOTIONS, STATES

FAST = {"requests_per_s": 10_000, "request_burst": 10_000}
MSGPACK = "application/msgpack"


@pytest.fixture
async def client(faced_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await faced_client(limits=FAST)
    return client


async def state_of(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/api/state")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_default_state_has_every_field_and_no_internal_ones(client: Any) -> None:
    assert await state_of(client) == {
        "state": "idle",
        "amplitude": 0.0,
        "emotion": "neutral",
        "emotionSecondary": "neutral",
        "emotionBlend": 0.0,
        "intensity": 1.0,
        "progress": None,
        "lookAt": {"x": 0.0, "y": 0.0},
        "color": None,
        "text": None,
        "textDuration": 3000,
        "detail": None,
        "winkLeft": 0.0,
        "winkRight": 0.0,
    }


async def test_partial_updates_merge(client: Any) -> None:
    response = await client.post("/api/state", json={"state": "thinking", "emotion": "happy"})
    assert response.status == 200
    body = await response.json()
    assert body["ok"] is True
    assert body["state"]["state"] == "thinking"
    await client.post("/api/state", json={"lookAt": {"x": 0.5}, "color": "#00ff88"})
    await client.post("/api/state", json={"lookAt": {"y": -0.25}})
    state = await state_of(client)
    assert state["state"] == "thinking"
    assert state["emotion"] == "happy"
    assert state["lookAt"] == {"x": 0.5, "y": -0.25}
    assert state["color"] == "#00ff88"
    await client.post("/api/state", json={"color": None, "progress": 0.5})
    await client.post("/api/state", json={"progress": None})
    state = await state_of(client)
    assert state["color"] is None
    assert state["progress"] is None


async def test_numbers_out_of_range_are_clamped(client: Any) -> None:
    update = {
        "amplitude": 7,
        "emotionBlend": -3.5,
        "intensity": 1.5,
        "progress": 2,
        "lookAt": {"x": -9, "y": 9},
        "textDuration": 10,
        "winkLeft": -1,
        "winkRight": 100,
    }
    response = await client.post("/api/state", json=update)
    assert response.status == 200
    state = await state_of(client)
    assert state["amplitude"] == 1.0
    assert state["emotionBlend"] == 0.0
    assert state["intensity"] == 1.0
    assert state["progress"] == 1.0
    assert state["lookAt"] == {"x": -1.0, "y": 1.0}
    assert state["textDuration"] == 500
    assert state["winkLeft"] == 0.0
    assert state["winkRight"] == 1.0
    await client.post("/api/state", json={"textDuration": 99_999.7})
    assert (await state_of(client))["textDuration"] == 30000
    await client.post("/api/state", json={"textDuration": 1234.6})
    assert (await state_of(client))["textDuration"] == 1235


async def test_unknown_fields_are_ignored(client: Any) -> None:
    response = await client.post(
        "/api/state", json={"state": "working", "sparkles": True, "future": {"a": 1}}
    )
    assert response.status == 200
    state = await state_of(client)
    assert state["state"] == "working"
    assert "sparkles" not in state


@pytest.mark.parametrize(
    ("update", "field", "words"),
    [
        ({"state": "dancing"}, "state", "'dancing'; allowed: idle, thinking, speaking"),
        ({"emotion": "angry"}, "emotion", "allowed: neutral, happy, sad"),
        ({"emotionSecondary": 3}, "emotionSecondary", "allowed: neutral"),
        ({"emotionBlend": "high"}, "emotionBlend", "expected a number from 0 to 1"),
        ({"amplitude": True}, "amplitude", "expected a number from 0 to 1"),
        ({"lookAt": {"x": "left"}}, "lookAt.x", "expected a number from -1 to 1"),
        ({"lookAt": 5}, "lookAt", "expected an object"),
        ({"color": "red"}, "color", 'expected a colour "#RRGGBB", or null'),
        ({"text": 42}, "text", "expected a string, or null"),
        ({"textDuration": "long"}, "textDuration", "expected a number from 500 to 30000"),
        ({"progress": [1]}, "progress", "or null"),
    ],
)
async def test_wrong_types_and_unknown_enum_values_are_400_naming_the_field(
    client: Any, update: dict[str, Any], field: str, words: str
) -> None:
    await client.post("/api/state", json={"state": "listening", "emotion": "proud"})
    before = await state_of(client)
    response = await client.post("/api/state", json={"winkLeft": 1, **update})
    assert response.status == 400
    body = await response.json()
    assert body["field"] == field
    assert f"'{field}'" in body["error"]
    assert words in body["error"]
    if field == "state":
        assert body["allowed"] == list(STATES)
    if field in ("emotion", "emotionSecondary"):
        assert body["allowed"] == list(EMOTIONS)
    assert await state_of(client) == before  # winkLeft in the same body was not applied


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (b'{"state": "idle"', "application/json", 400, "not valid JSON"),
        # the schema trips on the number before the parser reaches the broken end
        (b'{"state": 5, "emotion": "happy"', "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "must be an object"),
        (b'"thinking"', "application/json", 400, "must be an object"),
        (b"", "application/json", 400, "empty"),
        (b"\xc1", MSGPACK, 400, "not valid msgpack"),
        (b"state=idle", "application/x-www-form-urlencoded", 415, "Content-Type"),
        (b'{"text": "' + b"x" * 5000 + b'"}', "application/json", 413, "too large"),
    ],
)
async def test_bad_bodies_get_clear_errors_and_change_nothing(
    client: Any, body: bytes, content_type: str, status: int, words: str
) -> None:
    before = await state_of(client)
    response = await client.post("/api/state", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    assert words in (await response.json())["error"]
    assert await state_of(client) == before


async def test_unknown_path_and_method_are_json_errors(client: Any) -> None:
    response = await client.post("/api/stat", json={})
    assert response.status == 404
    assert "error" in await response.json()
    response = await client.delete("/api/state")
    assert response.status == 405
    assert "error" in await response.json()


async def test_text_and_detail_are_ephemeral_and_recorded_in_history(client: Any) -> None:
    await client.post("/api/state", json={"state": "speaking", "text": "Hello!", "detail": "d1"})
    state = await state_of(client)
    assert state["text"] is None
    assert state["detail"] is None
    response = await client.get("/api/history")
    assert response.status == 200
    history = await response.json()
    assert history["count"] == len(history["entries"]) == 3
    kinds = [entry["type"] for entry in history["entries"]]
    assert kinds == ["state", "text", "detail"]
    first, text, detail = history["entries"]
    assert first["data"] == {"state": "speaking", "prev": "idle", "emotion": "neutral"}
    assert text["data"] == {"text": "Hello!", "state": "speaking", "emotion": "neutral"}
    assert detail["data"] == {"detail": "d1"}
    assert all(
        isinstance(entry["ts"], int) and entry["ts"] > 1.7e12 for entry in history["entries"]
    )


async def test_history_is_a_ring_of_configured_size(faced_client: Any) -> None:
    client = await faced_client(limits=FAST, face={"history_size": 5})
    for i in range(12):
        await client.post("/api/state", json={"text": f"line {i}"})
    history = await (await client.get("/api/history")).json()
    assert history["count"] == 5
    assert [e["data"]["text"] for e in history["entries"]] == [f"line {i}" for i in range(7, 12)]


async def test_reset_returns_to_the_default_state(client: Any) -> None:
    await client.post("/api/state", json={"state": "alert", "emotion": "sad", "color": "#112233"})
    response = await client.post("/api/state", json={"type": "reset"})
    assert response.status == 200
    assert (await response.json())["state"]["state"] == "idle"
    state = await state_of(client)
    assert state["emotion"] == "neutral"
    assert state["color"] is None


async def test_msgpack_request_and_response(client: Any) -> None:
    body = msgspec.msgpack.encode({"state": "puzzled", "lookAt": {"x": 2}})
    response = await client.post(
        "/api/state", data=body, headers={"Content-Type": MSGPACK, "Accept": MSGPACK}
    )
    assert response.status == 200
    assert response.content_type == MSGPACK
    decoded = msgspec.msgpack.decode(await response.read())
    assert decoded["ok"] is True
    assert decoded["state"]["state"] == "puzzled"
    assert decoded["state"]["lookAt"] == {"x": 1.0, "y": 0.0}
    response = await client.get("/api/state", headers={"Accept": "application/x-msgpack"})
    assert msgspec.msgpack.decode(await response.read())["state"] == "puzzled"
    # A msgpack error is answered in msgpack too, naming the field.
    bad = msgspec.msgpack.encode({"emotion": "grumpy"})
    response = await client.post(
        "/api/state", data=bad, headers={"Content-Type": MSGPACK, "Accept": MSGPACK}
    )
    assert response.status == 400
    assert msgspec.msgpack.decode(await response.read())["field"] == "emotion"


async def test_speak_increments_the_sequence_and_sets_speaking(client: Any) -> None:
    first = await client.post("/api/speak")
    assert first.status == 200
    body = await first.json()
    assert body["ok"] is True
    assert body["seq"] == 1
    assert body["state"]["state"] == "speaking"
    second = await client.post("/api/speak", json={"state": "reacting", "emotion": "excited"})
    body = await second.json()
    assert body["seq"] == 2
    assert body["state"]["state"] == "reacting"
    assert body["state"]["emotion"] == "excited"


async def test_a_refused_speak_body_does_not_advance_the_sequence(client: Any) -> None:
    await client.post("/api/speak")
    response = await client.post("/api/speak", json={"emotion": "furious"})
    assert response.status == 400
    assert (await response.json())["field"] == "emotion"
    assert (await (await client.post("/api/speak")).json())["seq"] == 2


async def test_audio_as_raw_wav_and_as_base64_json(client: Any) -> None:
    wav = b"RIFF" + bytes(range(256)) * 4
    await client.post("/api/speak")
    response = await client.post("/api/audio", data=wav, headers={"Content-Type": "audio/wav"})
    assert response.status == 200
    assert await response.json() == {"ok": True, "seq": 1}
    encoded = base64.b64encode(wav).decode()
    response = await client.post("/api/audio", json={"data": encoded, "seq": 7})
    assert await response.json() == {"ok": True, "seq": 7}
    response = await client.post(
        "/api/audio", data=wav, headers={"Content-Type": "application/octet-stream"}
    )
    assert await response.json() == {"ok": True, "seq": 1}
    response = await client.post("/api/audio-done")
    assert await response.json() == {"ok": True, "seq": 1}
    response = await client.post("/api/audio-done", json={"seq": 5})
    assert await response.json() == {"ok": True, "seq": 5}


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"json": {}}, 400, "missing field 'data'"),
        ({"json": {"data": ""}}, 400, "empty"),
        ({"json": {"data": "not base64!"}}, 400, "base64"),
        ({"json": {"data": 12}}, 400, "'data'"),
        ({"json": {"data": "UklGRg==", "seq": "x"}}, 400, "'seq'"),
        ({"data": b"", "headers": {"Content-Type": "audio/wav"}}, 400, "empty"),
        ({"data": b"", "headers": {"Content-Type": "application/json"}}, 400, "missing audio"),
        ({"data": b"x" * 2049, "headers": {"Content-Type": "audio/wav"}}, 413, "too large"),
        ({"json": {"data": base64.b64encode(b"x" * 2049).decode()}}, 413, "too large"),
        ({"data": b"hi", "headers": {"Content-Type": "image/png"}}, 415, "Content-Type"),
    ],
)
async def test_bad_audio_is_refused(
    faced_client: Any, kwargs: dict[str, Any], status: int, words: str
) -> None:
    client = await faced_client(limits={**FAST, "audio_max_bytes": 2048})
    response = await client.post("/api/audio", **kwargs)
    assert response.status == status
    assert words in (await response.json())["error"]


async def test_audio_done_rejects_a_bad_seq(client: Any) -> None:
    response = await client.post("/api/audio-done", json={"seq": "last"})
    assert response.status == 400
    assert (await response.json())["field"] == "seq"
