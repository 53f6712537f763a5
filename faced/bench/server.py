"""A server process for a benchmark to measure: a free loopback port, start, wait, stop.

Owns: what the benchmarks share; does not own any measurement (one module per subject).
Shared by `faced bench api` (faced and the bare aiohttp baseline), `faced bench analyze` and
`faced bench live` (its port only), with the CPU time a server process has used (on a shared
machine req/s follow the neighbours' load, CPU per request much less so), and the event loop
the load generators run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path


def client_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop for a load generator where it is installed (as faced's own): the
    client shares the machine with the server it measures, and every microsecond of CPU
    it spends per request is one the server does not get."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop.new_event_loop


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
