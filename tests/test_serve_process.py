"""The real `faced serve` process: config errors, SIGTERM, logging, systemd's notify protocol.

The notify socket is the OS boundary: each test owns a real AF_UNIX datagram socket and
points the daemon at it with NOTIFY_SOCKET, as systemd would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

pytestmark = pytest.mark.slow


class NotifySocket:
    """The service manager's end of the notify protocol."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value
        self.received: list[tuple[float, str]] = []

    async def next(self, seconds: float = 10.0) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(seconds):
            data = await loop.sock_recv(self.sock, 4096)
        message = data.decode()
        self.received.append((time.monotonic(), message))
        return message

    async def until(self, wanted: str, seconds: float = 10.0) -> str:
        """Receive until a datagram containing the line ``wanted`` arrives."""
        async with asyncio.timeout(seconds):
            while True:
                message = await self.next(seconds)
                if wanted in message.split("\n"):
                    return message


def _notify_socket(address: str, env_value: str) -> Iterator[NotifySocket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    try:
        yield NotifySocket(sock, env_value)
    finally:
        sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    path = str(tmp_path / "notify")
    yield from _notify_socket(path, path)


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    name = f"faced-test-{os.getpid()}-{time.monotonic_ns()}"
    yield from _notify_socket("\0" + name, "@" + name)


async def test_bad_config_key_stops_startup_with_one_line_and_exit_78(run_faced) -> None:
    faced = await run_faced(config_text="[server]\nbogus = 1\n", wait=False)
    assert await faced.wait_exit() == 78
    assert len(faced.stderr_lines) == 1, faced.stderr
    assert "unknown key server.bogus" in faced.stderr_lines[0]


async def test_port_in_use_is_one_error_line_and_exit_1(run_faced) -> None:
    first = await run_faced()
    second = await run_faced(port=first.port, wait=False)
    assert await second.wait_exit() == 1
    assert "cannot listen on 127.0.0.1" in second.stderr


async def test_sigterm_exits_0_within_3_seconds(run_faced) -> None:
    faced = await run_faced()
    async with aiohttp.ClientSession() as session:
        # an idle keep-alive connection must not hold the shutdown up
        async with session.get(f"{faced.url}/health") as response:
            assert response.status == 200
        started = time.monotonic()
        faced.terminate()
        assert await faced.wait_exit() == 0
    assert time.monotonic() - started < 3.0
    assert "stopping" in faced.stderr
    assert "loop=uvloop" in faced.stderr  # the daemon runs on uvloop


async def test_json_log_format_writes_one_object_per_line(run_faced) -> None:
    faced = await run_faced(config_text='[logging]\nformat = "json"\nlevel = "debug"\n')
    async with aiohttp.ClientSession() as session, session.get(f"{faced.url}/nowhere") as r:
        assert r.status == 404
    faced.terminate()
    assert await faced.wait_exit() == 0
    events = [json.loads(line) for line in faced.stderr_lines]
    access = [e for e in events if e["logger"] == "faced.access" and e["path"] == "/nowhere"]
    assert access and access[0]["status"] == 404 and access[0]["method"] == "GET"
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in events)


async def test_ready_is_sent_once_bound_then_watchdog_then_stopping(
    run_faced, notify_socket
) -> None:
    env = {"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "400000"}
    faced = await run_faced(env=env, wait=False)
    ready = await notify_socket.until("READY=1")
    assert any(line.startswith("STATUS=serving") for line in ready.split("\n"))
    # READY means bound: /health answers at once, no retry
    async with aiohttp.ClientSession() as session, session.get(f"{faced.url}/health") as r:
        assert r.status == 200

    pings = []
    while len(pings) < 4:
        if await notify_socket.next() == "WATCHDOG=1":
            pings.append(time.monotonic())
    intervals = [b - a for a, b in itertools.pairwise(pings)]
    mean = sum(intervals) / len(intervals)
    assert 0.1 < mean < 0.4, intervals  # WATCHDOG_USEC/2 = 0.2 s, loosely (shared CPUs)

    faced.terminate()
    stopping = await notify_socket.until("STOPPING=1")
    assert "STOPPING=1" in stopping
    assert await faced.wait_exit() == 0


async def test_watchdog_meant_for_another_pid_is_not_pinged(run_faced, notify_socket) -> None:
    env = {
        "NOTIFY_SOCKET": notify_socket.env_value,
        "WATCHDOG_USEC": "100000",
        "WATCHDOG_PID": "1",
    }
    faced = await run_faced(env=env, wait=False)
    await notify_socket.until("READY=1")
    await asyncio.sleep(0.4)  # eight intervals' worth
    faced.terminate()
    await notify_socket.until("STOPPING=1")
    assert await faced.wait_exit() == 0
    assert not [m for _, m in notify_socket.received if m == "WATCHDOG=1"]


async def test_abstract_notify_socket_gets_ready(run_faced, abstract_notify_socket) -> None:
    faced = await run_faced(env={"NOTIFY_SOCKET": abstract_notify_socket.env_value}, wait=False)
    await abstract_notify_socket.until("READY=1")
    faced.terminate()
    await abstract_notify_socket.until("STOPPING=1")
    assert await faced.wait_exit() == 0


async def test_sigterm_closes_sockets_with_1001_and_finishes_in_flight_requests(
    run_faced,
) -> None:
    # The OpenClaw gateway is the far end of the network: a real HTTP server in the test
    # that holds a chat request until told to answer, keeping it in flight through SIGTERM.
    chat_arrived, answer_chat = asyncio.Event(), asyncio.Event()

    async def gateway_message(request: web.Request) -> web.Response:
        chat_arrived.set()
        await answer_chat.wait()
        return web.json_response({"reply": "still here"})

    gateway = web.Application()
    gateway.router.add_post("/api/message", gateway_message)
    async with TestServer(gateway, host="127.0.0.1") as gateway_server:
        env = {"OPENCLAW_GATEWAY_URL": str(gateway_server.make_url(""))}
        faced = await run_faced(env=env)
        async with aiohttp.ClientSession() as session:
            viewer = await session.ws_connect(f"{faced.url}/ws/viewer")
            agent = await session.ws_connect(f"{faced.url}/ws/agent")
            chat = asyncio.create_task(
                session.post(f"{faced.url}/api/chat", json={"message": "hello?"})
            )
            async with asyncio.timeout(10):
                await chat_arrived.wait()
            started = time.monotonic()
            faced.terminate()
            async with asyncio.timeout(3):
                assert await _receive_close(viewer) == 1001
                assert await _receive_close(agent) == 1001
            await asyncio.sleep(0.3)  # shutdown is under way, the chat still in flight
            answer_chat.set()
            async with await chat as response:
                assert response.status == 200
                assert await response.json() == {"reply": "still here"}
            assert await faced.wait_exit() == 0
        assert time.monotonic() - started < 3.0


async def _receive_close(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    while True:
        message = await ws.receive()
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return ws.close_code
