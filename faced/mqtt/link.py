"""The link to the MQTT broker: availability, Home Assistant discovery, states, commands.

Owns: the component (``MqttService``, a cleanup context): one task that connects (aiomqtt
on paho-mqtt, imported only when ``mqtt.url`` is set), announces ``online`` (retained; the
last will says ``offline``), publishes the discovery configs (faced.mqtt.discovery), then
publishes the states on change — at most one round per ``mqtt.min_interval_s``, each value
only when it changed — and hands commands (this box's and the group's) to
faced.mqtt.commands. A lost broker is retried with faced.devices.retry's backoff and shows
in /health; nothing else waits for it: the services only poke an event. ``switch(on)``
takes the link down (``offline``, then a clean disconnect) or up again at run time
(``POST /api/components/mqtt``; faced.components persists it). Does not own: the
entities' table, what a command does, or the services whose states it reads. Why apart:
the broker is someone else's engine; all of faced's dealings with it sit in one place.

On shutdown ``offline`` is published before the connection closes (a clean disconnect
does not send the last will).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from faced.api.errors import ApiError
from faced.api.health import Health
from faced.config import Config
from faced.devices.retry import Backoff
from faced.devices.retry import Health as LinkHealth
from faced.mqtt.commands import Commands
from faced.mqtt.discovery import (
    AVAILABLE,
    BY_KEY,
    COMMANDS,
    ENTITIES,
    NOT_AVAILABLE,
    OFF,
    ON,
    UNKNOWN,
    Topics,
    config_of,
    device_of,
)

if TYPE_CHECKING:
    import aiomqtt

    from faced.live import LiveService
    from faced.openface import OpenFace

log = logging.getLogger(__name__)

FIRST_RETRY_S: Final = 1.0
MAX_RETRY_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 10.0
GOODBYE_TIMEOUT_S: Final = 0.5
"""Each of the goodbye and the disconnect: a hung broker must not eat the shutdown's time
(``server.shutdown_timeout_s``)."""
MAX_QUEUED_MESSAGES: Final = 64
"""Commands received and not yet carried out; beyond that paho drops them (bounded)."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho leaves that socket to the garbage
    collector, and a broker with a bad certificate is retried every 30 s for days."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except OSError:  # ssl.SSLError included
            self.close()
            raise


def _tls_context(cafile: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    context.sslsocket_class = _ClosingSSLSocket
    return context


def _flag(value: bool) -> str:
    return ON if value else OFF


class MqttService:
    """One box's link to the broker."""

    def __init__(
        self,
        config: Config,
        *,
        commands: Commands,
        live: LiveService,
        health: Health,
        host_name: str | None = None,
    ) -> None:
        self.config = config
        self.mqtt = config.mqtt
        self.enabled = bool(self.mqtt.url)
        """Configured (``mqtt.url`` set); ``switched_on`` says whether the link should run."""
        self.switched_on = True
        self._started = False
        self._switching = asyncio.Lock()
        self.topics = Topics.from_config(config, host_name)
        self.device = device_of(config, self.topics, host_name)
        self.commands = commands
        self.openface: OpenFace = commands.openface
        self.live = live
        self.health = health
        self.link = LinkHealth("off" if not self.enabled else "starting")
        self.connected = False
        self.published = 0
        self.received = 0
        self.refused = 0
        self._dirty = asyncio.Event()
        self._sent: dict[str, str] = {}
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    # --- what the services call (cheap, never waits for the broker) ------------------------

    def poke(self, message: object = None) -> None:
        """Something may have changed: the publisher looks at the states soon."""
        del message
        self._dirty.set()

    # --- the component ---------------------------------------------------------------------

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        del app
        if not self.enabled:
            yield
            return
        self.openface.hub.observers.append(self.poke)
        self.live.person.observers.append(self.poke)
        self.live.results.observers.append(self.poke)
        self._started = True
        if self.switched_on:  # else switched off before the start (the saved switch)
            self._connect()
        try:
            yield
        finally:
            self._started = False
            for observers in (
                self.openface.hub.observers,
                self.live.person.observers,
                self.live.results.observers,
            ):
                observers.remove(self.poke)
            async with self._switching:
                await self._disconnect()

    async def switch(self, on: bool) -> None:
        """The component's run-time switch: off says ``offline`` (retained) and disconnects
        cleanly (no last will: the box is alive, only its link is off); on connects again."""
        async with self._switching:
            if on == self.switched_on:
                return
            self.switched_on = on
            if not self._started:
                return  # the lifetime starts (or not) with it
            if on:
                self._connect()
            else:
                await self._disconnect()

    def _connect(self) -> None:
        reopens, self.link = self.link.reopens, LinkHealth("starting")  # a new link's errors
        self.link.reopens = reopens
        self._task = asyncio.create_task(self._run(), name="mqtt")

    async def _disconnect(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        await self._goodbye()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                await task

    async def _goodbye(self) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(Exception):
            await client.publish(
                self.topics.availability,
                NOT_AVAILABLE,
                qos=1,
                retain=True,
                timeout=GOODBYE_TIMEOUT_S,
            )

    def report(self) -> dict[str, Any]:
        """The /health entry."""
        if not self.enabled:
            return {"status": "off", "reason": "mqtt.url is not set"}
        url = urlsplit(self.mqtt.url)
        report: dict[str, Any] = {
            "status": self.link.status if self.switched_on else "off",
            "connected": self.connected,
            "broker": f"{url.scheme}://{url.hostname}:{self._port(url.scheme, url.port)}",
            "node_id": self.topics.node_id,
            "base_topic": self.topics.base,
            "discovery": self.mqtt.discovery,
            "reconnects": self.link.reopens,
            "published": self.published,
            "commands": self.received,
            "refused": self.refused,
        }
        if not self.switched_on:
            report["reason"] = "switched off (POST /api/components/mqtt)"
        elif self.link.error is not None:
            report["error"] = self.link.error
        return report

    @staticmethod
    def _port(scheme: str, port: int | None) -> int:
        return port or (8883 if scheme == "mqtts" else 1883)

    # --- the connection --------------------------------------------------------------------

    async def _client_factory(self) -> Callable[[], aiomqtt.Client]:
        import aiomqtt  # noqa: PLC0415  (only a box with mqtt.url set pays for it)

        url = urlsplit(self.mqtt.url)
        tls: ssl.SSLContext | None = None
        if url.scheme == "mqtts":
            cafile = self.mqtt.tls_ca_file or None
            tls = await asyncio.to_thread(_tls_context, cafile)
        will = aiomqtt.Will(self.topics.availability, NOT_AVAILABLE, qos=1, retain=True)
        assert url.hostname is not None  # faced.config checked the url

        def make() -> aiomqtt.Client:
            return aiomqtt.Client(
                url.hostname or "",
                self._port(url.scheme, url.port),
                username=self.mqtt.username,
                password=self.mqtt.password,
                identifier=f"faced-{self.topics.node_id}",
                will=will,
                keepalive=self.mqtt.keepalive_s,
                timeout=CONNECT_TIMEOUT_S,
                tls_context=tls,
                max_queued_incoming_messages=MAX_QUEUED_MESSAGES,
            )

        return make

    async def _run(self) -> None:
        import aiomqtt  # noqa: PLC0415

        backoff = Backoff(FIRST_RETRY_S, MAX_RETRY_S)
        try:
            make = await self._client_factory()
        except (OSError, ssl.SSLError) as exc:
            self.link.failed(f"TLS set-up: {exc}")
            log.error("mqtt: cannot set up TLS: %s", exc)
            return
        ever_connected = False
        while True:
            try:
                async with make() as client:
                    self._client = client
                    self.connected = True
                    if ever_connected:
                        self.link.reopens += 1
                    ever_connected = True
                    ended = self.link.working()
                    backoff.reset()
                    log.info(
                        "mqtt: connected to %s%s",
                        self.mqtt.url,
                        " again" if ended else "",
                        extra={"node_id": self.topics.node_id},
                    )
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                if self.link.failed(str(exc)):
                    log.warning("mqtt: %s: %s; retrying", self.mqtt.url, exc)
            finally:
                self._client = None
                self.connected = False
            await asyncio.sleep(backoff.next())

    async def _session(self, client: aiomqtt.Client) -> None:
        topics = self.topics
        await client.publish(topics.availability, AVAILABLE, qos=1, retain=True)
        for topic in topics.subscriptions():
            await client.subscribe(topic, qos=1)
        if self.mqtt.discovery:
            await client.subscribe(topics.ha_status, qos=1)
            await self._announce(client)
        self._sent.clear()  # a new session: every state again (retained for late readers)
        self._dirty.set()
        # Either ends only when the connection fails: the other stops with it.
        tasks = {
            asyncio.create_task(self._publisher(client), name="mqtt-states"),
            asyncio.create_task(self._receiver(client), name="mqtt-commands"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # raises the MqttError that ended the session

    async def _receiver(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self._on_message(client, message.topic.value, message.payload)

    async def _announce(self, client: aiomqtt.Client) -> None:
        packs = self.commands.presets.slugs
        for entity in ENTITIES:
            payload = config_of(entity, self.topics, self.device, face_packs=packs)
            topic = self.topics.discovery(entity)
            await client.publish(topic, msgspec.json.encode(payload), qos=1, retain=True)
            self.published += 1

    async def _publisher(self, client: aiomqtt.Client) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.mqtt.poll_s):
                    await self._dirty.wait()
            self._dirty.clear()
            for key, value in self.states().items():
                if self._sent.get(key) != value:
                    await client.publish(self.topics.state(key), value, qos=0, retain=True)
                    self._sent[key] = value
                    self.published += 1
            await asyncio.sleep(self.mqtt.min_interval_s)

    async def _on_message(self, client: aiomqtt.Client, topic: str, payload: Any) -> None:
        if topic == self.topics.ha_status:
            if payload == AVAILABLE.encode():  # Home Assistant (re)started: tell it again
                await self._announce(client)
                self._sent.clear()
                self._dirty.set()
            return
        key = self.topics.command_key(topic)
        if key is None or key not in COMMANDS:
            return
        self.received += 1
        data = payload if isinstance(payload, bytes) else str(payload or "").encode()
        try:
            await self.commands.run(key, data)
        except ApiError as exc:
            self.refused += 1
            # Rate-limited refusals come in floods: the error topic has each, the log none.
            if exc.status != 429:
                log.info("mqtt: command %s refused: %s", topic, exc.message)
            body = {"error": exc.message, "status": exc.status, "entity": key, "topic": topic}
            await client.publish(self.topics.errors, msgspec.json.encode(body), qos=0)
        self._dirty.set()

    # --- the states ------------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        """Every entity's state as its payload; presence-level facts only (privacy)."""
        live = self.live.live
        summary = live.perception.summary if live is not None else None
        face = self.openface.model.state
        states = {
            "presence": _flag(summary is not None and summary.present),
            "people": str(summary.people if summary is not None else 0),
            "distance": UNKNOWN
            if summary is None or summary.distance_m is None
            else f"{summary.distance_m:.2f}",
            "attention": _flag(summary is not None and summary.attention),
            "speaking": _flag(summary is not None and summary.speaking),
            "state": face.state,
            "emotion": face.emotion,
            "face": self.commands.presets.face,
            "volume": str(self.commands.speaker.volume.volume),
            "fps": f"{live.fps:.1f}" if live is not None else "0.0",
            "health": self._health(),
        }
        display = self.commands.display.display
        if display is not None:
            states["display"] = _flag(bool(display.power))
            brightness = display.brightness
            states["brightness"] = UNKNOWN if brightness is None else str(brightness)
        assert states.keys() <= BY_KEY.keys()
        return states

    def _health(self) -> str:
        components = self.health.components()
        return "degraded" if any(r["status"] == "error" for r in components.values()) else "ok"


__all__ = ["MqttService"]
