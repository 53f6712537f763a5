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
