"""Open Face v1 sockets and event stream: real server on loopback, real WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import socket
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from faced.keys import OPENFACE_KEY
from tests.helpers import until

FAST = {"requests_per_s": 10_000, "request_burst": 10_000}


@pytest.fixture
async def client(faced_client: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await faced_client(limits=FAST)
    return client


async def receive(ws: aiohttp.ClientWebSocketResponse, seconds: float = 2.0) -> dict[str, Any]:
    message = await ws.receive(timeout=seconds)
    if message.type is WSMsgType.TEXT:
        decoded: dict[str, Any] = msgspec.json.decode(message.data)
    elif message.type is WSMsgType.BINARY:
        decoded = msgspec.msgpack.decode(message.data)
    else:
        raise AssertionError(f"expected a message, got {message.type!r} {message.data!r}")
    return decoded


async def nothing_more(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.2) -> None:
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=seconds)


async def test_viewer_gets_state_then_history_then_broadcasts(client: Any) -> None:
    viewer = await client.ws_connect("/ws/viewer")
    greeting = await receive(viewer)
    assert greeting["type"] == "state"
    assert greeting["state"] == "idle"
    await nothing_more(viewer)  # no history yet, so no history message
    await client.post("/api/state", json={"state": "thinking", "text": "hmm"})
    update = await receive(viewer)
    assert update["type"] == "state"
    assert update["state"] == "thinking"
    assert update["text"] == "hmm"  # broadcast once with the text…
    await client.post("/api/state", json={"emotion": "happy"})
    assert (await receive(viewer))["text"] is None  # …then cleared
    late = await client.ws_connect("/ws/viewer")
    first = await receive(late)
    assert first == {**first, "type": "state", "state": "thinking", "emotion": "happy"}
    assert first["text"] is None
    history = await receive(late)
    assert history["type"] == "history"
    assert [e["type"] for e in history["entries"]] == ["state", "text"]
    await viewer.close()
    await late.close()


async def test_viewer_ping_pong_and_read_only(client: Any) -> None:
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    await viewer.send_str('{"type":"ping"}')
    assert await receive(viewer) == {"type": "pong"}
    before = await (await client.get("/api/state")).json()
    await viewer.send_str('{"state":"alert"}')
    error = await receive(viewer)
    assert error["type"] == "error"
    assert "read-only" in error["message"]
    await viewer.send_str("not json at all")
    assert (await receive(viewer))["type"] == "error"
    assert await (await client.get("/api/state")).json() == before
    await viewer.close()


async def test_audio_sequence_order_seen_by_a_viewer(client: Any) -> None:
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    wav = b"RIFF-fake-wav"
    await client.post("/api/speak", json={"text": "Hi there"})
    await client.post("/api/audio", data=wav, headers={"Content-Type": "audio/wav"})
    await client.post("/api/audio-done")
    seen = [await receive(viewer) for _ in range(4)]
    assert [m["type"] for m in seen] == ["audio-seq", "state", "audio", "audio-done"]
    assert seen[0] == {"type": "audio-seq", "seq": 1, "expectAudio": True}
    assert seen[1]["state"] == "speaking"
    assert seen[1]["text"] == "Hi there"
    assert seen[2] == {
        "type": "audio",
        "data": base64.b64encode(wav).decode(),
        "format": "wav",
        "seq": 1,
    }
    assert seen[3] == {"type": "audio-done", "seq": 1}
    await viewer.close()


async def test_msgpack_viewer_and_agent_sockets(client: Any) -> None:
    viewer = await client.ws_connect("/ws/viewer?encoding=msgpack")
    first = await viewer.receive(timeout=2)
    assert first.type is WSMsgType.BINARY
    assert msgspec.msgpack.decode(first.data)["type"] == "state"
    agent = await client.ws_connect("/ws/agent?encoding=msgpack")
    await agent.send_bytes(msgspec.msgpack.encode({"state": "working", "progress": 3}))
    update = msgspec.msgpack.decode((await viewer.receive(timeout=2)).data)
    assert update["state"] == "working"
    assert update["progress"] == 1.0
    await agent.send_bytes(msgspec.msgpack.encode({"type": "ping"}))
    pong = await agent.receive(timeout=2)
    assert pong.type is WSMsgType.BINARY
    assert msgspec.msgpack.decode(pong.data) == {"type": "pong"}
    await agent.send_bytes(msgspec.msgpack.encode({"emotion": 5}))
    error = msgspec.msgpack.decode((await agent.receive(timeout=2)).data)
    assert error["type"] == "error"
    assert error["field"] == "emotion"
    await viewer.send_bytes(msgspec.msgpack.encode({"type": "ping"}))
    assert msgspec.msgpack.decode((await viewer.receive(timeout=2)).data) == {"type": "pong"}
    await agent.close()
    await viewer.close()


async def test_bad_socket_encoding_is_400(client: Any) -> None:
    response = await client.get("/ws/viewer?encoding=xml")
    assert response.status == 400
    body = await response.json()
    assert body["field"] == "encoding"
    assert body["allowed"] == ["json", "msgpack"]


async def test_agent_updates_reach_viewers_and_errors_keep_the_socket_open(client: Any) -> None:
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    agent = await client.ws_connect("/ws/agent")
    await agent.send_str('{"state":"listening","emotion":"playful"}')
    assert (await receive(viewer))["state"] == "listening"
    await agent.send_str('{"type":"ping"}')
    assert await receive(agent) == {"type": "pong"}
    before = await (await client.get("/api/state")).json()
    for bad, words in [
        ("{not json", "not valid JSON"),
        ('{"state":"dancing"}', "allowed: idle"),
        ('{"lookAt":{"x":"up"}}', "'lookAt.x'"),
        ("[1,2,3]", "must be an object"),
        ('{"text":"' + "x" * 5000 + '"}', "too large"),
    ]:
        await agent.send_str(bad)
        error = await receive(agent)
        assert error["type"] == "error"
        assert words in error["message"]
    await nothing_more(viewer)  # nothing was broadcast for the refused messages
    assert await (await client.get("/api/state")).json() == before
    await agent.send_str('{"type":"reset"}')
    assert (await receive(viewer))["state"] == "idle"
    assert not agent.closed
    await agent.close()
    await viewer.close()


async def test_agent_rate_limit_drops_the_excess(faced_client: Any) -> None:
    client = await faced_client(limits={**FAST, "agent_messages_per_s": 5})
    agent = await client.ws_connect("/ws/agent")
    for i in range(8):
        await agent.send_str(msgspec.json.encode({"progress": i / 10}).decode())
    errors = [await receive(agent) for _ in range(3)]
    assert errors == [{"type": "error", "message": "Rate limited"}] * 3
    await nothing_more(agent)
    state = await (await client.get("/api/state")).json()
    assert state["progress"] == 0.4  # the fifth message was the last one applied
    await agent.close()


async def test_viewer_and_agent_limits_are_503_before_the_handshake(faced_client: Any) -> None:
    client = await faced_client(limits={**FAST, "max_viewers": 2, "max_agents": 1})
    viewers = [await client.ws_connect("/ws/viewer") for _ in range(2)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/viewer")
    assert refused.value.status == 503
    response = await client.get("/ws/viewer")
    assert response.status == 503
    assert "too many viewers" in (await response.json())["error"]
    response = await client.get("/api/events")  # event streams count as viewers
    assert response.status == 503
    agent = await client.ws_connect("/ws/agent")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws/agent")
    assert refused.value.status == 503
    health = await (await client.get("/health")).json()
    assert health["viewers"] == 2
    assert health["agents"] == 1
    await viewers[0].close()
    await agent.close()
    await asyncio.sleep(0.05)
    again = await client.ws_connect("/ws/viewer")  # a freed place can be taken
    assert (await receive(again))["type"] == "state"
    for ws in (again, viewers[1]):
        await ws.close()


async def _silent_viewer(host: str, port: int) -> socket.socket:
    """A WebSocket viewer that completes the handshake and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(b"0123456789abcdef").decode()
    request = (
        f"GET /ws/viewer HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_slow_viewer_is_disconnected_while_a_fast_one_keeps_up(faced_client: Any) -> None:
    client = await faced_client(limits={**FAST, "viewer_queue_messages": 8})
    fast = await client.ws_connect("/ws/viewer", max_msg_size=0)
    await receive(fast)
    slow = await _silent_viewer(client.host, client.port)
    openface = client.app[OPENFACE_KEY]
    chunk = b"\x00" * 256 * 1024
    sent = 0
    async with asyncio.timeout(20):
        while openface.hub.slow_disconnects == 0:
            response = await client.post(
                "/api/audio", data=chunk, headers={"Content-Type": "audio/wav"}
            )
            assert response.status == 200
            sent += 1
            message = await receive(fast, 5)  # the fast viewer gets every chunk
            assert message["type"] == "audio"
    assert sent < 200
    health = await (await client.get("/health")).json()
    assert health["slow_viewers_disconnected"] == 1
    await client.post("/api/state", json={"state": "alert"})
    assert (await receive(fast))["state"] == "alert"
    # The slow one's place is given back.
    await until(lambda: openface.viewers == 1, 5.0, interval=0.02)
    slow.close()
    await fast.close()


async def test_event_stream_carries_what_viewers_get(client: Any) -> None:
    await client.post("/api/state", json={"state": "thinking"})
    async with client.get("/api/events") as events:
        assert events.status == 200
        assert events.content_type == "text/event-stream"

        async def next_event() -> dict[str, Any]:
            async with asyncio.timeout(2):
                line = await events.content.readline()
                assert line.startswith(b"data: ")
                assert await events.content.readline() == b"\n"
            decoded: dict[str, Any] = msgspec.json.decode(line[6:])
            return decoded

        assert (await next_event())["state"] == "thinking"
        assert (await next_event())["type"] == "history"
        await client.post("/api/speak")
        assert (await next_event()) == {"type": "audio-seq", "seq": 1, "expectAudio": True}
        assert (await next_event())["state"] == "speaking"
        health = await (await client.get("/health")).json()
        assert health["viewers"] == 1


async def test_shutdown_closes_sockets_with_1001_and_ends_event_streams(
    faced_client: Any,
) -> None:
    client = await faced_client(limits=FAST)
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    agent = await client.ws_connect("/ws/agent")
    events = await client.get("/api/events")
    await events.content.readline()
    await client.app.shutdown()
    closed = await viewer.receive(timeout=3)
    assert closed.type is WSMsgType.CLOSE
    assert closed.data == 1001
    closed = await agent.receive(timeout=3)
    assert closed.type is WSMsgType.CLOSE
    assert closed.data == 1001
    async with asyncio.timeout(3):
        await events.content.read()  # returns only once the server ended the stream
    assert events.content.at_eof()
    events.release()
    response = await client.get("/ws/viewer")  # no new viewers while shutting down
    assert response.status == 503


async def test_auto_sleep_after_the_last_agent_and_wake_on_the_next(faced_client: Any) -> None:
    client = await faced_client(limits=FAST, face={"auto_sleep_s": 0.2, "idle_timeout_s": 0})
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    agent = await client.ws_connect("/ws/agent")
    await agent.send_str('{"state":"working"}')
    assert (await receive(viewer))["state"] == "working"
    await agent.close()
    asleep = await receive(viewer, 3)
    assert asleep["state"] == "sleeping"
    assert asleep["emotion"] == "neutral"
    agent = await client.ws_connect("/ws/agent")
    assert (await receive(viewer))["state"] == "idle"
    await agent.close()
    await viewer.close()


async def test_idle_timeout_returns_to_idle_and_spares_waiting(faced_client: Any) -> None:
    client = await faced_client(limits=FAST, face={"idle_timeout_s": 0.2})
    viewer = await client.ws_connect("/ws/viewer")
    await receive(viewer)
    await client.post("/api/state", json={"state": "thinking", "emotion": "happy"})
    assert (await receive(viewer))["state"] == "thinking"
    idle = await receive(viewer, 3)
    assert (idle["state"], idle["emotion"]) == ("idle", "neutral")
    await client.post("/api/state", json={"state": "waiting", "emotion": "sad"})
    assert (await receive(viewer))["state"] == "waiting"
    await nothing_more(viewer, 0.6)  # waiting is exempt
    assert (await (await client.get("/api/state")).json())["state"] == "waiting"
    await viewer.close()


# --- viewer places: per client, and the appliance's own screen ----------------------------


def _lan(address: str) -> dict[str, str]:
    """Speak for a LAN client (the test server trusts loopback as a proxy)."""
    return {"X-Forwarded-For": address}


async def _fill(client: TestClient[Any, Any], headers: dict[str, str], most: int) -> list[Any]:
    """Open viewers until one is refused (or ``most`` are open); the open ones."""
    viewers = []
    for _ in range(most):
        try:
            viewers.append(await client.ws_connect("/ws/viewer", headers=headers))
        except aiohttp.WSServerHandshakeError as refused:
            assert refused.status == 503
            break
    return viewers


async def test_one_lan_host_cannot_lock_out_the_kiosk(faced_client: Any) -> None:
    client = await faced_client(
        limits={**FAST, "max_viewers": 8}, server={"trusted_proxies": ["127.0.0.1"]}
    )
    # One LAN host takes every place it can get...
    lan = await _fill(client, _lan("192.168.1.20"), most=9)
    assert lan
    # ...and the appliance's own screen (loopback) still gets in.
    kiosk = await client.ws_connect("/ws/viewer")
    assert (await receive(kiosk))["type"] == "state"
    for ws in (*lan, kiosk):
        await ws.close()


async def test_viewer_places_per_client_and_loopback_reserve(faced_client: Any) -> None:
    from faced.openface import loopback_reserve  # noqa: PLC0415

    client = await faced_client(
        limits={**FAST, "max_viewers": 10, "viewers_per_client": 3},
        server={"trusted_proxies": ["127.0.0.1"]},
    )
    reserved = loopback_reserve(10)
    assert 0 < reserved <= 5
    # A LAN host gets viewers_per_client places, sockets and event streams together.
    first = await _fill(client, _lan("192.168.1.20"), most=4)
    assert len(first) == 3
    response = await client.get("/ws/viewer", headers=_lan("192.168.1.20"))
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    error = (await response.json())["error"]
    assert "192.168.1.20" in error and "limits.viewers_per_client" in error
    response = await client.get("/api/events", headers=_lan("192.168.1.20"))
    assert response.status == 503
    # Other hosts fill what the network may hold: all but the reserved places.
    others = []
    for host in range(21, 30):
        others += await _fill(client, _lan(f"192.168.1.{host}"), most=3)
        if len(first) + len(others) >= 10 - reserved:
            break
    assert len(first) + len(others) == 10 - reserved
    response = await client.get("/ws/viewer", headers=_lan("192.168.1.99"))
    assert response.status == 503
    assert "own screen" in (await response.json())["error"]
    # Loopback takes the reserved places, more than viewers_per_client (it is not capped),
    # and past max_viewers it is refused like anyone.
    local = await _fill(client, {}, most=reserved + 1)
    assert len(local) == reserved
    health = await (await client.get("/health")).json()
    assert health["viewers"] == 10
    # A place freed by one LAN host can be taken by another.
    await first[0].close()
    await until(lambda: client.app[OPENFACE_KEY].viewers == 9, 5.0, interval=0.02)
    again = await client.ws_connect("/ws/viewer", headers=_lan("192.168.1.99"))
    assert (await receive(again))["type"] == "state"
    for ws in (*first[1:], *others, *local, again):
        await ws.close()
    await until(lambda: client.app[OPENFACE_KEY].viewers == 0, 5.0, interval=0.02)
