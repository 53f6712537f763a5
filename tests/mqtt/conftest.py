"""A real Mosquitto on a free loopback port, and a client that plays Home Assistant.

``broker`` (async fixture): Debian's ``mosquitto`` started from the test with a temp config
(anonymous, no persistence), never as a system service; ``broker.stop()`` /
``broker.start()`` restart it on the same port. ``home_assistant`` (async factory): an
aiomqtt client subscribed to the discovery prefix and ``faced/#`` that keeps every topic's
last payload (``seen``) and every message in order (``log``), and publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest

from tests.conftest import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Broker:
    def __init__(self, directory: Path, *, tls: bool = False) -> None:
        self.port = free_port()
        self.url = f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:{self.port}"
        self.cert = directory / "broker-cert.pem" if tls else None
        """The broker's self-signed certificate (its own CA), for ``mqtt.tls_ca_file``."""
        self._config = directory / "mosquitto.conf"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        text = f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        if self.cert is not None:
            key = self.cert.with_name("broker-key.pem")
            if not await asyncio.to_thread(self.cert.exists):
                await _self_signed(self.cert, key)
            text += f"certfile {self.cert}\nkeyfile {key}\n"
            if os.geteuid() == 0:
                # Run as root, mosquitto drops to its own user before it reads the key, which
                # then cannot enter the test's private temp directory.
                text += "user root\n"
        await asyncio.to_thread(self._config.write_text, text + "log_dest stderr\n")
        self._process = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(self._config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(10):
            while True:
                assert self._process.returncode is None, "mosquitto exited"
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        self._process = None


async def _self_signed(cert: Path, key: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await process.wait() == 0, "openssl could not make a certificate"


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[Broker]:
    """Mosquitto on mqtts:// with a self-signed certificate for 127.0.0.1."""
    server = Broker(tmp_path, tls=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    if not await asyncio.to_thread(Path(MOSQUITTO).exists):
        pytest.fail("mosquitto missing: apt-get install -y mosquitto (.ci/debian-packages.txt)")
    server = Broker(tmp_path)
    await server.start()
    yield server
    await server.stop()


@dataclass
class HomeAssistant:
    """The test's stand-in for Home Assistant: what it has seen, and a way to publish."""

    client: aiomqtt.Client
    seen: dict[str, bytes] = field(default_factory=dict)
    log: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        await self.client.publish(topic, payload, qos=1, retain=retain)

    def text(self, topic: str) -> str | None:
        value = self.seen.get(topic)
        return None if value is None else value.decode()


HomeAssistantFactory = Callable[..., Awaitable[HomeAssistant]]


@pytest.fixture
async def home_assistant(broker: Broker) -> AsyncIterator[HomeAssistantFactory]:
    stack = contextlib.AsyncExitStack()
    tasks: list[asyncio.Task[None]] = []

    async def factory(*topics: str) -> HomeAssistant:
        client = aiomqtt.Client("127.0.0.1", broker.port, identifier=f"ha-{len(tasks)}")
        await stack.enter_async_context(client)
        ha = HomeAssistant(client)
        for topic in topics or ("homeassistant/#", "faced/#"):
            await client.subscribe(topic, qos=1)

        async def receive() -> None:
            with contextlib.suppress(aiomqtt.MqttError):
                async for message in client.messages:
                    payload = message.payload
                    data = payload if isinstance(payload, bytes) else str(payload).encode()
                    ha.seen[message.topic.value] = data
                    ha.log.append((message.topic.value, data))

        tasks.append(asyncio.create_task(receive(), name="ha-receive"))
        return ha

    yield factory
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(aiomqtt.MqttError):
        await stack.aclose()
