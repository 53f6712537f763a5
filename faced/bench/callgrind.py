"""Instructions per request of server processes under ``valgrind --tool=callgrind``.

Owns: starting servers under callgrind, the fixed request sequence, reading the counts back.
Does not own what is compared or how it is printed (faced.bench.api). Why instructions: on a
shared machine req/s and CPU seconds follow the neighbours' load, while the instructions a
process executes for the same requests are repeatable to a fraction of a percent. They count
user space only (the system calls are the same for the same requests: strace says so) and
not cache misses; they measure work added, which is what a cost figure compares.

Each server starts with instrumentation off (start-up is not measured and runs ~5x faster),
is switched on with ``callgrind_control -i on``, warmed up, then every round zeroes the
counters (``-z``), sends the same requests on one keep-alive connection and dumps (``-d``).
Rounds alternate between the servers. Idle instructions per second (timers) are measured
beside, because under callgrind a round lasts ~50x longer than natively.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from faced.bench.server import running_server

STARTUP_ATTEMPTS = 2400
"""Polls of /health, 50 ms apart: two minutes, for a daemon starting under valgrind on a
busy machine."""


class CallgrindMissing(RuntimeError):
    """valgrind or callgrind_control is not installed."""


@dataclass
class Counted:
    """One server under callgrind and what its rounds counted."""

    name: str
    pid: int
    port: int
    out: Path
    per_request: list[float] = field(default_factory=list)
    idle_per_s: float = 0.0
    _dumps: int = 0

    def totals(self) -> int:
        """The instructions in the newest dump (callgrind names them out.<pid>.<n>)."""
        self._dumps += 1
        dump = self.out.parent / f"{self.out.name}.{self.pid}.{self._dumps}"
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise RuntimeError(f"callgrind dump {dump} has no totals")


def check_installed() -> None:
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise CallgrindMissing(f"{tool} is not installed (Debian: apt-get install valgrind)")


async def _control(pid: int, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "callgrind_control",
        *args,
        str(pid),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"callgrind_control {' '.join(args)} {pid}: {err.decode().strip()}")


@contextlib.asynccontextmanager
async def counted_server(name: str, command: list[str], port: int) -> AsyncIterator[Counted]:
    """``command`` (a server listening on ``port``) under callgrind, instrumentation off."""
    check_installed()
    with tempfile.TemporaryDirectory(prefix="faced-callgrind-") as directory:
        out = Path(directory) / name
        valgrind = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}.%p",
        ]
        async with running_server(
            [*valgrind, *command], port, attempts=STARTUP_ATTEMPTS
        ) as process:
            yield Counted(name, process.pid, port, out)


async def send(port: int, request: bytes, count: int) -> None:
    """``count`` times ``request`` on one keep-alive connection, each answer read whole;
    RuntimeError on any answer other than 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            start = head.lower().find(b"content-length:")
            length = int(head[start + 15 : head.index(b"\r\n", start)])
            await reader.readexactly(length)
            if head[9:12] != b"200":
                raise RuntimeError(f"port {port} answered {head[:40]!r}")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def measure(
    servers: list[Counted],
    request: bytes,
    *,
    count: int,
    rounds: int,
    warmup: int = 300,
    idle_s: float = 2.0,
) -> None:
    """Fill each server's ``per_request`` (one figure a round, rounds alternated) and
    ``idle_per_s``."""
    for server in servers:
        await _control(server.pid, "-i", "on")
        await send(server.port, request, warmup)
    for _ in range(rounds):
        for server in servers:
            await _control(server.pid, "-z")
            await send(server.port, request, count)
            await _control(server.pid, "-d")
            server.per_request.append(server.totals() / count)
    for server in servers:
        await _control(server.pid, "-z")
    await asyncio.sleep(idle_s)
    for server in servers:
        await _control(server.pid, "-d")
        server.idle_per_s = server.totals() / idle_s
