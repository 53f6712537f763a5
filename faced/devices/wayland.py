"""Output power through a Wayland compositor: a minimal client of wlr-output-power-management.

Owns switching outputs' power through the compositor's wlr-output-power-management.
Does not own finding the compositor's socket or deciding when (faced.devices.display).
Why: the kiosk compositor (sway on the appliance) holds DRM master, so
a process outside it switches the screen through it: ``zwlr_output_power_v1.set_mode`` is
DPMS (the panel blanks and sleeps, the layout and the browser stay as they are), unlike
wlr-randr's ``--off``, which removes the output from the layout. Debian bookworm has no
tool for this protocol (wlopm came later) and no Python binding that installs without a
compiler, and the part needed is small: the registry, ``wl_output`` (for the names), the
power manager and a roundtrip. So this speaks the wire protocol itself
(https://wayland.freedesktop.org/docs/html/ch04.html): each message is the object id (u32),
``size << 16 | opcode`` (u32) and 32-bit arguments in host byte order; a string is its
length with the NUL, then the bytes padded to 4.

``set_output_power(path, on, output)`` opens its own connection each time (the compositor
may have restarted since the last call), switches the outputs, and checks the compositor's
answer: each output's ``mode`` event must report the new state. asyncio streams with a
deadline: nothing blocks the event loop and a silent compositor cannot hang the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

DISPLAY_ID: Final = 1
# Requests (client -> compositor) and events (compositor -> client), by interface.
WL_DISPLAY_SYNC: Final = 0
WL_DISPLAY_GET_REGISTRY: Final = 1
WL_DISPLAY_EVENT_ERROR: Final = 0
WL_REGISTRY_BIND: Final = 0
WL_REGISTRY_EVENT_GLOBAL: Final = 0
WL_CALLBACK_EVENT_DONE: Final = 0
WL_OUTPUT_EVENT_NAME: Final = 4  # since wl_output version 4
WL_OUTPUT_VERSION: Final = 4
POWER_MANAGER: Final = "zwlr_output_power_manager_v1"
POWER_MANAGER_GET_OUTPUT_POWER: Final = 0
POWER_SET_MODE: Final = 0
POWER_EVENT_MODE: Final = 0
POWER_EVENT_FAILED: Final = 1
MODE_OFF: Final = 0
MODE_ON: Final = 1

SETTLE_S: Final = 1.0
"""How long after the roundtrip a compositor may take to report the new mode (one that
applies output changes on its next frame rather than at once)."""
MAX_MESSAGE: Final = 4096  # the protocol's own limit on a message


class WaylandError(Exception):
    """Talking to the compositor failed; the message is one line naming what and where."""


def socket_path(display: str, runtime_dir: str | None) -> str:
    """The socket WAYLAND_DISPLAY names: an absolute path as it is (libwayland accepts one),
    else a name under XDG_RUNTIME_DIR."""
    if os.path.isabs(display):
        return display
    if not runtime_dir:
        raise WaylandError(f"WAYLAND_DISPLAY {display!r} is a name but XDG_RUNTIME_DIR is unset")
    return os.path.join(runtime_dir, display)


def _string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("=I", len(data)) + data + b"\0" * (-len(data) % 4)


def _read_string(body: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("=I", body, offset)
    start = offset + 4
    text = body[start : start + max(length - 1, 0)].decode(errors="replace")
    return text, start + length + (-length % 4)


@dataclass
class _Output:
    global_name: int
    version: int
    """wl_output's version as the compositor advertises it."""
    object_id: int = 0
    name: str = ""
    power_id: int = 0
    mode: int | None = None
    failed: bool = False

    @property
    def label(self) -> str:
        return self.name or f"wl_output {self.global_name}"


class _Connection:
    """One client connection: object ids, requests out, events dispatched to handlers."""

    def __init__(
        self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.path = path
        self.reader = reader
        self.writer = writer
        self.handlers: dict[int, Callable[[int, bytes], None]] = {}
        self._next_id = DISPLAY_ID + 1

    def new_id(self, handler: Callable[[int, bytes], None] | None = None) -> int:
        object_id = self._next_id
        self._next_id += 1
        if handler is not None:
            self.handlers[object_id] = handler
        return object_id

    def send(self, object_id: int, opcode: int, arguments: bytes = b"") -> None:
        size = 8 + len(arguments)
        self.writer.write(struct.pack("=II", object_id, size << 16 | opcode) + arguments)

    async def dispatch(self) -> None:
        """Read one event and hand it to its object's handler (unknown objects: dropped)."""
        object_id, word = struct.unpack("=II", await self.reader.readexactly(8))
        size, opcode = word >> 16, word & 0xFFFF
        if not 8 <= size <= MAX_MESSAGE:
            raise WaylandError(
                f"{self.path}: the compositor sent a message of {size} bytes: not Wayland"
            )
        body = await self.reader.readexactly(size - 8)
        if object_id == DISPLAY_ID and opcode == WL_DISPLAY_EVENT_ERROR:
            culprit, code = struct.unpack_from("=II", body)
            message, _ = _read_string(body, 8)
            raise WaylandError(
                f"{self.path}: the compositor reports error {code} on object {culprit}: {message}"
            )
        handler = self.handlers.get(object_id)
        if handler is not None:
            handler(opcode, body)

    async def roundtrip(self) -> None:
        """Every request sent so far has been handled and its events received."""
        done = False

        def on_done(opcode: int, body: bytes) -> None:
            nonlocal done
            done = opcode == WL_CALLBACK_EVENT_DONE

        self.send(DISPLAY_ID, WL_DISPLAY_SYNC, struct.pack("=I", self.new_id(on_done)))
        await self.writer.drain()
        while not done:
            await self.dispatch()

    def bind(
        self,
        registry: int,
        global_name: int,
        interface: str,
        version: int,
        handler: Callable[[int, bytes], None] | None = None,
    ) -> int:
        """wl_registry.bind: its new_id has no fixed interface, so the interface and version
        travel before the id."""
        object_id = self.new_id(handler)
        arguments = struct.pack("=I", global_name) + _string(interface)
        arguments += struct.pack("=II", version, object_id)
        self.send(registry, WL_REGISTRY_BIND, arguments)
        return object_id


async def _connect(path: str) -> _Connection:
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError as exc:
        raise WaylandError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    return _Connection(path, reader, writer)


async def set_output_power(path: str, on: bool, output: str = "", *, limit_s: float) -> list[str]:
    """Switch ``output`` (every output when empty) of the compositor at socket ``path`` on or
    off; the names switched. WaylandError when the compositor cannot be reached, lacks the
    protocol or the output, or does not report the new mode."""
    try:
        async with asyncio.timeout(limit_s):
            return await _set_output_power(path, on, output)
    except TimeoutError:
        raise WaylandError(f"{path}: the compositor did not answer in {limit_s:g} s") from None
    except (asyncio.IncompleteReadError, ConnectionError):
        raise WaylandError(f"{path}: the compositor closed the connection") from None
    except struct.error:
        raise WaylandError(f"{path}: the compositor sent a malformed message") from None


async def _set_output_power(path: str, on: bool, output: str) -> list[str]:
    connection = await _connect(path)
    try:
        return await _switch(connection, path, on, output)
    finally:
        connection.writer.close()
        with contextlib.suppress(OSError):
            await connection.writer.wait_closed()


async def _switch(connection: _Connection, path: str, on: bool, output: str) -> list[str]:
    outputs: list[_Output] = []
    manager: int | None = None  # its global name

    def on_global(opcode: int, body: bytes) -> None:
        nonlocal manager
        if opcode != WL_REGISTRY_EVENT_GLOBAL:
            return  # global_remove: an output unplugged mid-call shows up as no mode below
        (global_name,) = struct.unpack_from("=I", body)
        interface, offset = _read_string(body, 4)
        (version,) = struct.unpack_from("=I", body, offset)
        if interface == "wl_output":
            outputs.append(_Output(global_name, version))
        elif interface == POWER_MANAGER:
            manager = global_name

    registry = connection.new_id(on_global)
    connection.send(DISPLAY_ID, WL_DISPLAY_GET_REGISTRY, struct.pack("=I", registry))
    await connection.roundtrip()
    if manager is None:
        raise WaylandError(
            f"{path}: the compositor has no {POWER_MANAGER} (wlr-output-power-management; "
            "sway, labwc and wayfire have it, cage 0.1.4 does not)"
        )
    for each in outputs:
        each.object_id = connection.bind(
            registry,
            each.global_name,
            "wl_output",
            min(each.version, WL_OUTPUT_VERSION),
            _output_handler(each),
        )
    manager_id = connection.bind(registry, manager, POWER_MANAGER, 1)
    await connection.roundtrip()  # the outputs' names (wl_output version 4)
    if output:
        targets = [each for each in outputs if each.name == output]
        if not targets:
            names = ", ".join(each.label for each in outputs) or "none"
            raise WaylandError(f"{path}: no output {output!r} (the compositor has: {names})")
    else:
        targets = outputs
        if not targets:
            raise WaylandError(f"{path}: the compositor has no outputs")
    for each in targets:
        each.power_id = connection.new_id(_power_handler(each))
        connection.send(
            manager_id,
            POWER_MANAGER_GET_OUTPUT_POWER,
            struct.pack("=II", each.power_id, each.object_id),
        )
    await connection.roundtrip()  # each output's current mode
    wanted = MODE_ON if on else MODE_OFF
    for each in targets:
        if each.mode != wanted:
            connection.send(each.power_id, POWER_SET_MODE, struct.pack("=I", wanted))
    await connection.roundtrip()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_S):
            while any(each.mode != wanted and not each.failed for each in targets):
                await connection.dispatch()
    state = "on" if on else "off"
    for each in targets:
        if each.failed:
            raise WaylandError(f"{path}: the compositor could not switch {each.label} {state}")
        if each.mode is None:
            raise WaylandError(f"{path}: the compositor reports no power state for {each.label}")
        if each.mode != wanted:
            raise WaylandError(
                f"{path}: the compositor did not switch {each.label} {state} "
                f"(it still reports it {'off' if on else 'on'})"
            )
    return [each.label for each in targets]


def _output_handler(output: _Output) -> Callable[[int, bytes], None]:
    def handle(opcode: int, body: bytes) -> None:
        if opcode == WL_OUTPUT_EVENT_NAME:
            output.name, _ = _read_string(body, 0)

    return handle


def _power_handler(output: _Output) -> Callable[[int, bytes], None]:
    def handle(opcode: int, body: bytes) -> None:
        if opcode == POWER_EVENT_MODE:
            (output.mode,) = struct.unpack_from("=I", body)
        elif opcode == POWER_EVENT_FAILED:
            output.failed = True

    return handle


__all__ = ["WaylandError", "set_output_power", "socket_path"]
