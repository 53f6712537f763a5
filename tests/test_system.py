"""faced.system: log line formats and the systemd notify protocol (in-process parts)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from faced.config import LoggingConfig
from faced.system import (
    JsonFormatter,
    KeyValueFormatter,
    Notifier,
    setup_logging,
    watchdog_interval,
)


def _record(message: str, *args: object, exc: bool = False, **fields: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad\nthing")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("faced.x", logging.WARNING, __file__, 1, message, args, exc_info)
    for key, value in fields.items():
        setattr(record, key, value)
    return record


def test_key_value_lines_are_one_line_even_with_a_traceback() -> None:
    line = KeyValueFormatter().format(
        _record("hello %s", "world", exc=True, path="/a b", status=404)
    )
    assert "\n" not in line
    assert line.startswith("ts=")
    assert ' level=warning logger=faced.x msg="hello world" path="/a b" status=404 exc="' in line
    assert "ValueError: bad\\nthing" in line


def test_json_lines_carry_fields_and_exception() -> None:
    event = json.loads(JsonFormatter().format(_record("hi", exc=True, peer="10.0.0.1")))
    assert event["msg"] == "hi" and event["level"] == "warning"
    assert event["peer"] == "10.0.0.1"
    assert "ValueError" in event["exc"]


def test_setup_logging_installs_one_handler_at_the_configured_level() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging(LoggingConfig(level="warning", format="json"), stream=stream)
        logging.getLogger("faced.test").info("hidden")
        logging.getLogger("faced.test").warning("shown %d", 1, extra={"k": "v"})
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["msg"] == "shown 1" and json.loads(line)["k"] == "v"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "junk"}, None),
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid(environ, expected) -> None:
    assert watchdog_interval(environ) == expected


def test_notifier_is_a_no_op_without_notify_socket() -> None:
    assert Notifier({}).notify("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "vsock:2:1"}).enabled is False


def test_notifier_sends_datagrams_to_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.notify("READY=1\nSTATUS=up")
        assert receiver.recv(100) == b"READY=1\nSTATUS=up"
        notifier.close()


def test_notifier_survives_a_vanished_socket(tmp_path: Path, caplog) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    with caplog.at_level(logging.WARNING, logger="faced.system"):
        assert notifier.notify("WATCHDOG=1") is False
    assert "systemd notify failed" in caplog.text
    notifier.close()


async def test_watchdog_pings_come_from_the_event_loop_and_stop_when_it_blocks(
    faced_client, tmp_path: Path, monkeypatch
) -> None:
    loop = asyncio.get_running_loop()
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify"))
    receiver.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # a ping every 50 ms
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        await faced_client()
        async with asyncio.timeout(5):
            assert await loop.sock_recv(receiver, 100) == b"WATCHDOG=1"
        # Hog the loop for 0.5 s without a blocking call (pure computation): no task runs,
        # so at most the one ping already due can be sent before the next await.
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            pass
        blocked_pings = 0
        with contextlib.suppress(BlockingIOError):
            while receiver.recv(100):
                blocked_pings += 1
        assert blocked_pings <= 2, blocked_pings  # ~10 had the loop been free
        async with asyncio.timeout(5):
            assert await loop.sock_recv(receiver, 100) == b"WATCHDOG=1"  # resumes
    finally:
        receiver.close()
