"""A server process for a benchmark to measure: a free loopback port, start, wait, stop.

Owns: what the benchmarks share; does not own any measurement (one module per subject).
Shared by `faced bench api` (faced and the bare aiohttp baseline), `faced bench analyze` and
`faced bench live` (its port only), with the CPU time a server process has used (on a shared
machine req/s follow the neighbours' load, CPU per request much less so), and the event loop
the load generators run on; the raw WebSocket viewers' framing (`faced bench api`, `soak`)
and the positive-number arguments of several benches.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from faced.commands import at_least


def client_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for a load generator where it is installed (as faced's own): the
    client shares the machine with the server it measures, and every microsecond of CPU
    it spends per request is one the server does not get."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop.new_event_loop


def positive(kind: type[int] | type[float]) -> Any:
    """An argparse ``type`` for a number > 0 of ``kind``, refused in one line otherwise."""
    return at_least(kind, 0, strict=True)


def take_upgrade(buffer: bytearray, ready: asyncio.Future[None]) -> bool:
    """A raw WebSocket client's handshake: True once the server's 101 head has been taken
    from ``buffer`` (``ready`` resolved); False while it is incomplete, or refused (``ready``
    then fails with the server's answer)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return False
    if not buffer.startswith(b"HTTP/1.1 101"):
        if not ready.done():
            ready.set_exception(RuntimeError(bytes(buffer[:200]).decode(errors="replace")))
        return False
    del buffer[: end + 4]
    ready.set_result(None)
    return True


def ws_frames(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """The complete server frames (unmasked) at the start of ``buffer`` as (opcode, payload),
    each removed as it is yielded; a partial frame stays for the next read."""
    while len(buffer) >= 2:
        opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4:
                return
            length, offset = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                return
            length, offset = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < offset + length:
            return
        payload = bytes(buffer[offset : offset + length])
        del buffer[: offset + length]
        yield opcode, payload


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); NaN where there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def running_server(
    command: list[str], port: int, *, attempts: int = 200
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``GET /health`` on ``port`` answers 200 (polling every
    50 ms, ``attempts`` times), yield the process; terminate it (kill after 5 s) on exit.
    RuntimeError with the server's last stderr when it exits early or never comes up."""
    import aiohttp  # noqa: PLC0415  (imported here so other faced commands skip it)

    process = subprocess.Popen(  # noqa: ASYNC220  (started once, before any measuring)
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(attempts):
                if process.poll() is not None:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"server exited early: {error.strip()[-500:]}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{port}/health") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError(f"server on port {port} did not come up")
        yield process
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 5)
        except subprocess.TimeoutExpired:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
