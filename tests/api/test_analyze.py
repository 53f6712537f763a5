"""The analyze API (/v1/analyze, /v1/analyze/base64, /v1/stream) against `faced analyze`.

The real app on loopback with real HTTP and WebSocket
clients and the real models; the reference is the `faced analyze --jsonl` command run as a
process on the same photographs (tests/.data, see tests.data).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import REPO_ROOT
from tests.data import path as data_path
from tests.helpers import until

PHOTOS = ("tongue.jpg", "breakingbad.jpg", "lenna.png", "chelsea.png", "einstein.jpg")
VOLATILE = {"timing_ms", "timestamp_ms", "type", "id", "frame", "latency_ms", "skipped"}
Client = TestClient[Any, Any]


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in VOLATILE and k != "source"}


async def _read(name: str) -> bytes:
    return await asyncio.to_thread(lambda: data_path(name).read_bytes())


@pytest.fixture(scope="module")
def cli_results() -> dict[str, dict[str, Any]]:
    """`faced analyze --jsonl` on the photos, as a separate process (the reference)."""
    import subprocess  # noqa: PLC0415

    paths = [str(data_path(name)) for name in PHOTOS]
    done = subprocess.run(
        [sys.executable, "-m", "faced", "analyze", "--jsonl", *paths],
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {Path(line["source"]).name: line for line in lines}


@pytest.fixture
async def client(faced_client: Callable[..., Awaitable[Client]]) -> Client:
    return await faced_client()


def _form(data: bytes, name: str = "image", filename: str = "photo") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return form


async def test_upload_agrees_with_cli(client: Client, cli_results: dict[str, Any]) -> None:
    for name in PHOTOS:
        response = await client.post("/v1/analyze", data=_form(await _read(name)))
        assert response.status == 200, await response.text()
        got = await response.json()
        assert _stable(got) == _stable(cli_results[name]), name
    assert cli_results["tongue.jpg"]["face_found"] is True
    assert cli_results["chelsea.png"]["face_found"] is False


async def test_base64_json_and_msgpack_agree_with_cli(
    client: Client, cli_results: dict[str, Any]
) -> None:
    data = await _read("tongue.jpg")
    text = base64.b64encode(data).decode()
    response = await client.post("/v1/analyze/base64", json={"image_base64": text})
    assert response.status == 200, await response.text()
    assert _stable(await response.json()) == _stable(cli_results["tongue.jpg"])

    # A data: URL, as a msgpack request with a msgpack answer.
    body = msgspec.msgpack.encode({"image_base64": f"data:image/jpeg;base64,{text}"})
    response = await client.post(
        "/v1/analyze/base64",
        data=body,
        headers={"Content-Type": "application/msgpack", "Accept": "application/msgpack"},
    )
    assert response.status == 200
    assert response.content_type == "application/msgpack"
    got = msgspec.msgpack.decode(await response.read())
    assert _stable(got) == _stable(cli_results["tongue.jpg"])


async def test_landmarks_and_num_faces(client: Client) -> None:
    data = base64.b64encode(await _read("breakingbad.jpg")).decode()
    response = await client.post(
        "/v1/analyze/base64", json={"image_base64": data, "landmarks": True, "num_faces": 2}
    )
    got = await response.json()
    assert response.status == 200
    assert len(got["faces"]) == 2
    assert len(got["landmarks"]) == 478
    response = await client.post(
        "/v1/analyze?landmarks=true&num_faces=2", data=_form(await _read("breakingbad.jpg"))
    )
    assert len((await response.json())["faces"]) == 2


def _png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


async def test_bad_uploads_get_clear_errors_and_server_keeps_serving(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await faced_client(vision={"max_image_bytes": 200_000})
    jpeg = await _read("tongue.jpg")
    assert len(jpeg) < 200_000
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/analyze", {"data": _form(b"")}, 400, "empty"),
        ("/v1/analyze", {"data": _form(jpeg[:300])}, 422, "JPEG"),
        ("/v1/analyze", {"data": _form(b"GIF89a" + b"\0" * 100)}, 415, "not a JPEG"),
        ("/v1/analyze", {"data": _form(await _read("takeo.ppm"))}, 415, "not a JPEG"),
        ("/v1/analyze", {"data": _form(b"\xff\xd8\xff" + b"\0" * 300_000)}, 413, "too large"),
        ("/v1/analyze", {"data": _form(_png_header_bomb(30_000, 30_000))}, 413, "MP limit"),
        ("/v1/analyze", {"data": _form(jpeg, name="photo")}, 400, "missing field `image`"),
        ("/v1/analyze", {"json": {"image": "x"}}, 415, "multipart"),
        ("/v1/analyze?num_faces=9", {"data": _form(jpeg)}, 400, "num_faces"),
        ("/v1/analyze/base64", {"json": {"image_base64": "!!!"}}, 400, "not valid base64"),
        ("/v1/analyze/base64", {"json": {"image_base64": ""}}, 400, "empty"),
        ("/v1/analyze/base64", {"json": {}}, 400, "image_base64"),
        ("/v1/analyze/base64", {"json": {"image_base64": 5}}, 400, "image_base64"),
        ("/v1/analyze/base64", {"json": {"image_base64": "", "num_faces": 0}}, 400, "num_faces"),
        ("/v1/analyze/base64", {"data": b"{not json"}, 400, "not valid JSON"),
        (
            "/v1/analyze/base64",
            {"json": {"image_base64": "data:text/plain,hello"}},
            400,
            "data: URL",
        ),
    ]
    for path, kwargs, status, words in cases:
        response = await client.post(path, **kwargs)
        body = await response.json()
        assert response.status == status, (path, body)
        assert words in body["error"], (path, body)
    # Raw image body works too, and the server still answers after all that.
    response = await client.post("/v1/analyze", data=jpeg, headers={"Content-Type": "image/jpeg"})
    assert response.status == 200
    assert (await response.json())["face_found"] is True


async def test_auth_with_key(faced_client: Callable[..., Awaitable[Client]]) -> None:
    client = await faced_client(auth={"api_key": "sesame"})
    form = _form(await _read("tongue.jpg"))
    assert (await client.post("/v1/analyze", data=form)).status == 401
    response = await client.post(
        "/v1/analyze", data=_form(await _read("tongue.jpg")), headers={"X-API-Key": "nope"}
    )
    assert response.status == 403
    response = await client.post(
        "/v1/analyze/base64?token=sesame",
        json={"image_base64": base64.b64encode(await _read("tongue.jpg")).decode()},
    )
    assert response.status == 200


async def test_stream_agrees_with_cli_json_and_msgpack(
    client: Client, cli_results: dict[str, Any]
) -> None:
    data = await _read("tongue.jpg")
    expected = _stable(cli_results["tongue.jpg"])
    async with client.ws_connect("/v1/stream") as ws:
        await ws.send_bytes(data)
        reply = await ws.receive_json(timeout=10)
        assert reply["type"] == "result"
        assert reply["id"] == 1 and reply["frame"] == 1 and reply["skipped"] == 0
        assert reply["latency_ms"] > 0
        assert _stable(reply) == expected
        await ws.send_str(
            json.dumps({"image_base64": base64.b64encode(data).decode(), "id": "f-2"})
        )
        reply = await ws.receive_json(timeout=10)
        assert reply["id"] == "f-2" and reply["frame"] == 2
        assert reply["face_found"] is True
        await ws.send_str("not json")
        error = await ws.receive_json(timeout=10)
        assert error["type"] == "error" and "not valid JSON" in error["error"]
        await ws.send_bytes(data[:200])
        error = await ws.receive_json(timeout=10)
        assert error["type"] == "error" and "JPEG" in error["error"]
    async with client.ws_connect("/v1/stream?encoding=msgpack") as ws:
        await ws.send_bytes(msgspec.msgpack.encode({"image": data, "id": 7}))
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.BINARY
        reply = msgspec.msgpack.decode(message.data)
        assert reply["id"] == 7
        assert _stable(reply) == expected


async def test_stream_handshake_token(faced_client: Callable[..., Awaitable[Client]]) -> None:
    client = await faced_client(auth={"api_key": "sesame"})
    data = await _read("tongue.jpg")
    async with client.ws_connect("/v1/stream") as ws:
        await ws.send_str(json.dumps({"token": "sesame", "fps": 30}))
        assert (await ws.receive_json(timeout=10))["type"] == "ready"
        await ws.send_bytes(data)
        assert (await ws.receive_json(timeout=10))["face_found"] is True
    async with client.ws_connect("/v1/stream") as ws:
        await ws.send_str(json.dumps({"token": "wrong"}))
        error = await ws.receive_json(timeout=10)
        assert error == {"type": "error", "error": "invalid API key"}
        assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1008
    async with client.ws_connect("/v1/stream") as ws:
        await ws.send_bytes(data)  # a frame before the handshake
        error = await ws.receive_json(timeout=10)
        assert "API key required" in error["error"]
        assert (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSE
    # Header auth still works, and a wrong header is refused at the upgrade.
    async with client.ws_connect("/v1/stream", headers={"X-API-Key": "sesame"}) as ws:
        await ws.send_bytes(data)
        assert (await ws.receive_json(timeout=10))["type"] == "result"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/v1/stream?token=wrong")
    assert refused.value.status == 403


async def test_stream_burst_drops_stale_frames(client: Client) -> None:
    data = await _read("tongue.jpg")
    burst = 40
    text = base64.b64encode(data).decode()
    messages = [json.dumps({"image_base64": text, "id": index}) for index in range(burst)]
    async with client.ws_connect("/v1/stream") as ws:
        for message in messages:
            await ws.send_str(message)
        replies = []
        while True:
            reply = await ws.receive_json(timeout=20)
            replies.append(reply)
            if reply["id"] == burst - 1:
                break
    # Every frame is either answered or counted as skipped, the last one always answered,
    # and frames were dropped rather than queued (latest wins, no backlog).
    assert sum(r["skipped"] for r in replies) + len(replies) == burst
    assert len(replies) < burst
    assert any(r["skipped"] for r in replies)
    ids = [r["id"] for r in replies]
    assert ids == sorted(ids)
    assert len(client.app[_analyze_api_key()].streams) <= 1


def _analyze_api_key() -> Any:
    from faced.keys import ANALYZE_API_KEY  # noqa: PLC0415

    return ANALYZE_API_KEY


async def test_pool_full_answers_503(faced_client: Callable[..., Awaitable[Client]]) -> None:
    client = await faced_client()
    data = await _read("breakingbad.jpg")
    results = await asyncio.gather(
        *(client.post("/v1/analyze", data=_form(data)) for _ in range(20))
    )
    statuses = sorted(r.status for r in results)
    assert 200 in statuses and 503 in statuses, statuses
    busy = next(r for r in results if r.status == 503)
    assert busy.headers["Retry-After"] == "1"
    assert "busy" in (await busy.json())["error"]
    assert (await client.post("/v1/analyze", data=_form(data))).status == 200


async def test_health_reports_model_and_workers(client: Client) -> None:
    health = await (await client.get("/health")).json()
    assert health["model"]["name"] == "face_landmarker"
    assert len(health["model"]["sha256"]) == 64
    assert health["components"]["analyze"]["workers"] == 1


async def test_a_worker_loads_on_first_use_and_frees_its_models_when_idle(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await faced_client(vision={"analyze_idle_unload_s": 0.5})

    async def loaded() -> int:
        health = await (await client.get("/health")).json()
        return int(health["components"]["analyze"]["loaded"])

    async def freed() -> bool:
        return await loaded() == 0

    assert await freed()  # verified at start-up, not loaded
    data = await _read("lenna.png")
    for _ in range(2):  # the second request finds the models freed and loads them again
        response = await client.post("/v1/analyze", data=_form(data))
        assert response.status == 200, await response.text()
        assert (await response.json())["face_found"] is True
        await until(freed, 30.0, interval=0.1, what="the idle worker freeing its models")


async def _analyze_report(client: Client) -> dict[str, Any]:
    health = await (await client.get("/health")).json()
    report: dict[str, Any] = health["components"]["analyze"]
    return report


async def _tracking(client: Client) -> dict[str, Any]:
    health = await (await client.get("/health")).json()
    report: dict[str, Any] = health["components"]["tracking"]
    return report


async def test_one_worker_shares_the_live_trackers_models_with_the_same_results(
    faced_client: Callable[..., Awaitable[Client]], cli_results: dict[str, Any]
) -> None:
    """Demo camera tracking, default settings: the single worker holds no model set of its
    own, its answers are those of an own set (the CLI's and the unshared daemon's), and the
    tracker keeps tracking through the analyze calls."""
    shared = await faced_client(camera={"source": "demo"})
    own = await faced_client(
        camera={"source": "demo"}, vision={"analyze_shares_tracker_models": False}
    )
    before = (await _tracking(shared))["processed"]
    for name in PHOTOS:
        answers = []
        for client in (shared, own):
            response = await client.post("/v1/analyze", data=_form(await _read(name)))
            assert response.status == 200, await response.text()
            answers.append(_stable(await response.json()))
        assert answers[0] == answers[1] == _stable(cli_results[name]), name
    async with shared.ws_connect("/v1/stream") as ws:  # a stream's tracker on the shared set
        for frame in range(1, 4):
            await ws.send_bytes(await _read("tongue.jpg"))
            reply = await ws.receive_json(timeout=10)
            assert reply["frame"] == frame and reply["face_found"] is True
            if frame == 1:
                assert _stable(reply) == _stable(cli_results["tongue.jpg"])
    report = await _analyze_report(shared)
    assert (report["workers"], report["loaded"], report["sharing_tracker_models"]) == (1, 0, 1)
    assert (await _analyze_report(own))["loaded"] == 1
    assert (await _analyze_report(own))["sharing_tracker_models"] == 0

    async def tracked_on() -> bool:
        tracking = await _tracking(shared)
        return bool(tracking["processed"] > before + 5 and tracking["present"])

    await until(tracked_on, 30.0, interval=0.1, what="live tracking going on meanwhile")
    assert (await _tracking(shared))["failures"] == 0
    async with shared.ws_connect("/ws/tracking?fields=head") as ws:
        found = [(await ws.receive_json(timeout=10))["face_found"] for _ in range(5)]
    assert sum(found) >= 4


async def test_without_live_tracking_or_with_several_workers_a_worker_loads_its_own(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    data = await _read("lenna.png")
    for sections in (
        {},  # no camera
        {"camera": {"source": "demo", "tracking": False}},
        {"camera": {"source": "demo"}, "vision": {"analyze_workers": 2}},
    ):
        client = await faced_client(**sections)
        response = await client.post("/v1/analyze", data=_form(data))
        assert response.status == 200, await response.text()
        report = await _analyze_report(client)
        assert (report["loaded"], report["sharing_tracker_models"]) == (1, 0), sections


async def test_idle_unload_lets_go_of_the_trackers_models_and_tracking_goes_on(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await faced_client(camera={"source": "demo"}, vision={"analyze_idle_unload_s": 0.5})
    data = await _read("lenna.png")

    async def let_go() -> bool:
        report = await _analyze_report(client)
        return bool(report["sharing_tracker_models"] == 0 and report["loaded"] == 0)

    for _ in range(2):  # the second request takes the tracker's models again
        response = await client.post("/v1/analyze", data=_form(data))
        assert response.status == 200, await response.text()
        assert (await response.json())["face_found"] is True
        assert (await _analyze_report(client))["sharing_tracker_models"] == 1
        await until(let_go, 30.0, interval=0.1, what="the idle worker letting go")
    processed = (await _tracking(client))["processed"]

    async def tracking_on() -> bool:
        return bool((await _tracking(client))["processed"] > processed + 5)

    await until(tracking_on, 30.0, interval=0.1, what="live tracking after the unload")


async def test_missing_model_stops_startup(run_faced: Any, tmp_path: Path) -> None:
    process = await run_faced(config_text=f'[vision]\nmodel_dir = "{tmp_path}"\n', wait=False)
    status = await process.wait_exit(30)
    assert status == 78
    assert "face_detector.tflite: missing" in process.stderr


async def _bench_analyze(*options: str) -> tuple[int | None, str, str]:
    """`faced bench analyze OPTIONS` from the repository: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faced",
        "bench",
        "analyze",
        *options,
        cwd=str(REPO_ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
        out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_bench_analyze_runs_end_to_end() -> None:
    """`faced bench analyze` with tiny durations: it works, not how fast."""
    status, text, err = await _bench_analyze("--requests", "3", "--seconds", "0.3", "--rounds", "1")
    assert status == 0, err
    for row in (
        "baseline: decode+analyze",
        "POST /v1/analyze, 1 worker ",
        "2 workers",
        "1 worker x 2 threads",
    ):
        assert row in text
    assert "goal <= 10 ms" in text and "goal >= 1.8x" in text
    assert "server CPU ms/req" in text and "caps it near" in text


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--rounds", "0"], "--rounds must be at least 1"),
        (["--latency-threads", "0"], "--latency-threads must be at least 1"),
        (["--seconds", "-1"], "--seconds must be positive"),
    ],
)
async def test_bench_analyze_refuses_bad_options(option: list[str], message: str) -> None:
    status, out, err = await _bench_analyze(*option)
    assert status == 2 and out == ""
    (line,) = err.strip().splitlines()  # one clear line
    assert line.startswith("faced bench analyze: ") and message in line


async def test_sigterm_closes_streams_with_1001(run_faced: Any) -> None:
    faced = await run_faced()
    data = await _read("tongue.jpg")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{faced.url}/v1/stream") as ws,
    ):
        await ws.send_bytes(data)
        assert (await ws.receive_json(timeout=10))["type"] == "result"
        faced.terminate()
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == 1001
    assert await faced.wait_exit() == 0


# --- /v1/stream: sockets still waiting for their handshake -------------------------------


def _lan(address: str) -> dict[str, str]:
    """Speak for a LAN client (the test server trusts loopback as a proxy)."""
    return {"X-Forwarded-For": address}


async def _keyed_client(faced_client: Callable[..., Awaitable[Client]]) -> Client:
    return await faced_client(auth={"api_key": "sesame"}, server={"trusted_proxies": ["127.0.0.1"]})


async def _waiting_settles(client: Client, expected: int) -> None:
    """Poll until the server counts ``expected`` sockets waiting for their handshake."""
    api = client.app[_analyze_api_key()]
    await until(
        lambda: api.waiting.total() == expected and len(api.handshakes) == expected,
        30.0,
        interval=0.02,
    )


async def test_stream_silent_sockets_do_not_lock_out_the_key(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    from faced.api.analyze_stream import HANDSHAKES_PER_CLIENT, STREAMS_PER_WORKER  # noqa: PLC0415

    client = await _keyed_client(faced_client)
    data = await _read("tongue.jpg")
    places = client.app[_pool_key()].size * STREAMS_PER_WORKER
    # As many silent, unauthenticated sockets as there are stream places (a few hosts).
    silent = [
        await client.ws_connect(
            "/v1/stream", headers=_lan(f"192.0.2.{1 + index // HANDSHAKES_PER_CLIENT}")
        )
        for index in range(places)
    ]
    # (Each is counted once its upgrade is answered: no need to wait for the server.)
    # A client with the key in a header still gets a stream...
    async with client.ws_connect("/v1/stream", headers={"X-API-Key": "sesame"}) as ws:
        await ws.send_bytes(data)
        assert (await ws.receive_json(timeout=20))["face_found"] is True
    # ...and so does one with the key in its first message, from another host.
    async with client.ws_connect("/v1/stream", headers=_lan("198.51.100.9")) as ws:
        await ws.send_str(json.dumps({"token": "sesame"}))
        assert (await ws.receive_json(timeout=20))["type"] == "ready"
        await ws.send_bytes(data)
        assert (await ws.receive_json(timeout=20))["face_found"] is True
    for ws in silent:
        await ws.close()
    await _waiting_settles(client, 0)


async def test_stream_handshake_has_a_deadline(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    from faced.api.analyze_stream import HANDSHAKE_TIMEOUT_S  # noqa: PLC0415

    client = await _keyed_client(faced_client)
    async with client.ws_connect("/v1/stream", headers=_lan("192.0.2.1")) as ws:
        error = await ws.receive_json(timeout=HANDSHAKE_TIMEOUT_S + 25)
        assert error["type"] == "error"
        assert "no handshake within" in error["error"] and '{"token": KEY}' in error["error"]
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == 1008 and message.extra == "handshake timeout"
    await _waiting_settles(client, 0)


async def test_stream_waiting_handshakes_are_bounded(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    from faced.api.analyze_stream import (  # noqa: PLC0415
        HANDSHAKES_PER_CLIENT,
        HANDSHAKES_PER_STREAM_PLACE,
        STREAMS_PER_WORKER,
    )

    client = await _keyed_client(faced_client)

    async def refused(address: str) -> str:
        with pytest.raises(aiohttp.WSServerHandshakeError) as error:
            await client.ws_connect("/v1/stream", headers=_lan(address))
        assert error.value.status == 503
        # The same request without the upgrade shows the JSON error it was refused with.
        response = await client.get("/v1/stream", headers=_lan(address))
        assert response.status == 503 and response.headers["Retry-After"] == "1"
        message: str = (await response.json())["error"]
        return message

    # Per client: one host cannot take the waiting places of others.
    first = [
        await client.ws_connect("/v1/stream", headers=_lan("192.0.2.1"))
        for _ in range(HANDSHAKES_PER_CLIENT)
    ]
    message = await refused("192.0.2.1")
    assert f"limit {HANDSHAKES_PER_CLIENT} per client" in message and "192.0.2.1" in message
    # Overall: many hosts together still hold a bounded number of sockets.
    limit = HANDSHAKES_PER_STREAM_PLACE * client.app[_pool_key()].size * STREAMS_PER_WORKER
    others = [
        await client.ws_connect(
            "/v1/stream", headers=_lan(f"198.51.100.{1 + index // HANDSHAKES_PER_CLIENT}")
        )
        for index in range(limit - HANDSHAKES_PER_CLIENT)
    ]
    await _waiting_settles(client, limit)
    message = await refused("203.0.113.5")
    assert f"waiting for their handshake ({limit}, limit {limit})" in message
    # The key in a header needs no waiting place.
    async with client.ws_connect("/v1/stream", headers={"X-API-Key": "sesame"}) as ws:
        await ws.send_bytes(await _read("tongue.jpg"))
        assert (await ws.receive_json(timeout=20))["type"] == "result"
    # Places come back as sockets leave.
    for ws in [*first, *others]:
        await ws.close()
    await _waiting_settles(client, 0)
    async with client.ws_connect("/v1/stream", headers=_lan("203.0.113.5")) as ws:
        await ws.send_str(json.dumps({"token": "sesame"}))
        assert (await ws.receive_json(timeout=20))["type"] == "ready"


async def test_stream_handshake_when_every_stream_place_is_taken(
    faced_client: Callable[..., Awaitable[Client]],
) -> None:
    from faced.api.analyze_stream import STREAMS_PER_WORKER  # noqa: PLC0415

    client = await _keyed_client(faced_client)
    places = client.app[_pool_key()].size * STREAMS_PER_WORKER
    streams = [
        await client.ws_connect("/v1/stream", headers={"X-API-Key": "sesame"})
        for _ in range(places)
    ]
    await until(lambda: len(client.app[_analyze_api_key()].streams) == places, 30.0, interval=0.02)
    # Authenticated by its first message, then told to come back later (1013).
    async with client.ws_connect("/v1/stream", headers=_lan("192.0.2.1")) as ws:
        await ws.send_str(json.dumps({"token": "sesame"}))
        error = await ws.receive_json(timeout=20)
        assert error["type"] == "error" and "too many analyze streams" in error["error"]
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1013
    for ws in streams:
        await ws.close()


def _pool_key() -> Any:
    from faced.vision.workers import ANALYZE_POOL_KEY  # noqa: PLC0415

    return ANALYZE_POOL_KEY


async def test_sigterm_closes_waiting_handshakes_with_1001(run_faced: Any) -> None:
    faced = await run_faced(config_text='[auth]\napi_key = "sesame"\n')
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{faced.url}/v1/stream") as ws,
    ):
        await _wait_for_handshakes(faced.url, session)
        faced.terminate()
        message = await ws.receive(timeout=10)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == 1001
    assert await faced.wait_exit() == 0


async def _wait_for_handshakes(url: str, session: aiohttp.ClientSession) -> None:
    """Poll /health until the server reports a socket waiting for its handshake."""
    async with asyncio.timeout(30):
        while True:
            async with session.get(f"{url}/health") as response:
                report = (await response.json())["components"]["analyze"]
            if report.get("handshakes_waiting"):
                return
            await asyncio.sleep(0.05)
