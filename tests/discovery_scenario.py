"""Run inside a private network namespace by tests/test_discovery.py (never on its own).

Starts real ``faced serve`` daemons on 127.0.0.1, browses with faced.client's
``discover()``, ``faced discover`` and a zeroconf browser, and prints what it saw as one JSON
object on stdout; the test asserts on it. Refuses to run where an interface other than
``lo`` exists, so it can never multicast onto a real network.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

from faced.client import discover
from faced.schemas.discovery import FACED_SERVICE

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = ["127.0.0.1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start(config: str) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    path = Path(tempfile.mkdtemp()) / "faced.toml"
    path.write_text(config)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--camera", "none", "--display", "none", "--config", str(path),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return process, port


async def mdns_health(port: int, announced: bool = True) -> dict[str, Any]:
    """Wait for /health to say the announcement is done (probing takes seconds)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    report: dict[str, Any] = (await response.json())["components"]["mdns"]
                    if report["announced"] == announced:
                        return report
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("the daemon never announced")


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await process.wait()


async def faced_discover(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "faced", "discover", *args,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return {"rc": process.returncode, "stdout": out.decode(), "stderr": err.decode()}


def boxes(found: list[Any]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(box) for box in found]


async def announce() -> dict[str, Any]:
    """Announced, found, re-announced after a restart with a key, gone after the goodbye."""
    seen: dict[str, Any] = {}
    daemon, port = await start('[mdns]\nname = "test box"\n')
    seen["health"] = await mdns_health(port)
    seen["discovered"] = boxes(await discover(1.5, interfaces=LOOPBACK))
    seen["cli"] = await faced_discover("--timeout", "1.5")
    seen["cli_json"] = await faced_discover("--timeout", "1.5", "--json")

    # A browser listening across the shutdown sees the goodbye (without one, the record
    # would live on in caches for its TTL of 120 s).
    events: list[str] = []
    zc = AsyncZeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        events.append(f"{state_change.name} {name}")

    browser = AsyncServiceBrowser(zc.zeroconf, [FACED_SERVICE], handlers=[on_change])
    for _ in range(100):
        if events:
            break
        await asyncio.sleep(0.05)
    seen["exit"] = await stop(daemon)
    for _ in range(100):
        if any(e.startswith(ServiceStateChange.Removed.name) for e in events):
            break
        await asyncio.sleep(0.05)
    seen["browser_events"] = list(events)
    await browser.async_cancel()
    await zc.async_close()
    seen["after_goodbye"] = boxes(await discover(1.0, interfaces=LOOPBACK))

    # The key-required flag is set at startup (no run-time change of the key exists): a
    # restart with a key re-announces with key=yes.
    daemon, port = await start('[mdns]\nname = "test box"\n[auth]\napi_key = "k"\n')
    seen["health_with_key"] = await mdns_health(port)
    seen["discovered_with_key"] = boxes(await discover(1.5, interfaces=LOOPBACK))
    await stop(daemon)
    return seen


async def disabled() -> dict[str, Any]:
    daemon, port = await start("[mdns]\nenabled = false\n")
    seen = {"health": await mdns_health(port, announced=False)}
    seen["discovered"] = boxes(await discover(2.0, interfaces=LOOPBACK))
    seen["cli"] = await faced_discover("--timeout", "1")
    seen["exit"] = await stop(daemon)
    return seen


def main() -> None:
    interfaces = {name for _, name in socket.if_nameindex()}
    if interfaces != {"lo"}:
        sys.exit(f"refusing to run outside a private network namespace: {sorted(interfaces)}")
    scenario = {"announce": announce, "disabled": disabled}[sys.argv[1]]
    print(json.dumps(asyncio.run(scenario())))


if __name__ == "__main__":
    main()
