"""The daemon's announcement on the LAN: mDNS/DNS-SD with python-zeroconf (extra ``mdns``).

Owns: announcing ``_faced._tcp`` and ``_http._tcp`` with the TXT record of
faced.schemas.discovery, re-announcing when the record or the host's addresses change, the
goodbye packets on shutdown, and its /health entry. Does not own: the host name's address
records where avahi runs (``mdns.host_records``: two responders must never announce the same
records), finding other boxes (faced.client.discovery), or the TXT's shape
(faced.schemas.discovery). Why apart: announcing is optional (a missing zeroconf or no usable
interface logs one line and the daemon runs on) and must never hold up startup — probing
and announcing take seconds, so they run in a task of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from faced import __version__
from faced.config import Config
from faced.schemas.discovery import FACED_SERVICE, HTTP_SERVICE, txt_record

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

AVAHI_SOCKET: Final = Path("/run/avahi-daemon/socket")
REFRESH_S: Final = 30.0
"""How often the record and the addresses are checked for changes (refresh() at once)."""
GOODBYE_TIMEOUT_S: Final = 1.0
MISSING = "mdns: python-zeroconf is not installed (pip install 'faced[mdns]'); not announcing"


def instance_name(configured: str, hostname: str) -> str:
    """The configured name, else "faced on <host>" (the host's first label, within 63 bytes)."""
    if configured:
        return configured
    name = f"faced on {hostname.split('.', maxsplit=1)[0] or 'faced'}"
    return name.encode()[:63].decode("utf-8", "ignore")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ipv4(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


def _lan_addresses() -> list[str]:
    """The host's IPv4 addresses, loopback last (only used when there is nothing else)."""
    import ifaddr  # noqa: PLC0415 - zeroconf's dependency, present with it

    found = [
        str(ip.ip)
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str)
    ]
    lan = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return lan or [a for a in found if ipaddress.ip_address(a).is_loopback]


class Announcer:
    """Announces the daemon while it runs: a cleanup context (``lifetime``)."""

    def __init__(self, config: Config, key_required: Callable[[], bool]) -> None:
        self._config = config.mdns
        self._host = config.server.host
        self._port = config.server.port
        self._key_required = key_required
        self._status = "off"
        self._error: str | None = None
        self._name = ""
        self._announced = False
        self._record: dict[str, str] = {}
        self._addresses: list[str] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._goodbye: asyncio.Task[None] | None = None
        self._zeroconf: AsyncZeroconf | None = None
        self._infos: list[AsyncServiceInfo] = []

    # --- the lifetime ---------------------------------------------------------------------

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        if self._config.enabled:
            self._status = "ok"
            self._task = asyncio.create_task(self._run(), name="mdns-announce")
        yield
        await self.shutdown(app)
        if self._goodbye is not None:
            await self._goodbye

    async def shutdown(self, app: web.Application) -> None:
        """Goodbye as soon as the daemon stops listening (on_shutdown), while in-flight
        requests finish; the cleanup waits for it."""
        if self._goodbye is None:
            self._goodbye = asyncio.create_task(self._stop(), name="mdns-goodbye")

    def refresh(self) -> None:
        """Check the record now (a setting it carries changed), not at the next refresh."""
        self._wake.set()

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"status": self._status, "announced": self._announced}
        if self._name:
            report["name"] = self._name
        if self._record:
            report["txt"] = dict(self._record)
        if self._error is not None:
            report["error"] = self._error
        return report

    # --- the work -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            # Imported on a thread: zeroconf's ifaddr runs `ldconfig -p` while importing, a
            # blocking subprocess the event loop must not wait for.
            await asyncio.to_thread(importlib.import_module, "zeroconf.asyncio")
            from zeroconf import InterfaceChoice, IPVersion  # noqa: PLC0415 - optional extra
            from zeroconf.asyncio import AsyncZeroconf  # noqa: PLC0415
        except ImportError:
            log.warning("%s", MISSING)
            self._off("python-zeroconf is not installed (extra mdns)")
            return
        if _is_loopback(self._host):
            interfaces: Any = ["127.0.0.1"]  # a loopback server is no one's on the LAN
        elif _ipv4(self._host) and self._host != "0.0.0.0":
            interfaces = [self._host]
        else:
            interfaces = InterfaceChoice.All
        try:
            self._zeroconf = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            system_host = await self._system_owns_host()
            hostname = socket.gethostname()
            self._name = instance_name(self._config.name, hostname)
            server = f"{hostname.split('.')[0]}.local."
            self._addresses = [] if system_host else await self._addresses_now(interfaces)
            self._record = self._record_now()
            self._infos = [
                self._info(kind, f"{self._name}.{kind}", server)
                for kind in (FACED_SERVICE, HTTP_SERVICE)
            ]
            zc = self._zeroconf
            # The outer await queues each registration; the inner ones wait for probing and
            # announcing (seconds), both services at once.
            pending = [
                await zc.async_register_service(info, allow_name_change=True)
                for info in self._infos
            ]
            await asyncio.gather(*pending)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no usable interface, a socket refused: the daemon runs on
            log.warning("mdns: cannot announce: %s", exc)
            self._fail(str(exc) or type(exc).__name__)
            return
        self._announced = True
        self._name = self._infos[0].name.removesuffix("." + FACED_SERVICE)
        log.info("mdns: announced %r on port %d", self._name, self._port)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REFRESH_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._update(interfaces, system_host, server)
            except Exception as exc:
                log.warning("mdns: re-announcing failed: %s", exc)

    async def _system_owns_host(self) -> bool:
        mode = self._config.host_records
        if mode != "auto":
            return mode == "system"
        return await asyncio.to_thread(AVAHI_SOCKET.exists)

    async def _addresses_now(self, interfaces: Any) -> list[str]:
        if isinstance(interfaces, list):
            return list(interfaces)
        return await asyncio.to_thread(_lan_addresses)

    def _record_now(self) -> dict[str, str]:
        return txt_record(version=__version__, key_required=self._key_required())

    def _info(self, kind: str, name: str, server: str) -> AsyncServiceInfo:
        from zeroconf.asyncio import AsyncServiceInfo  # noqa: PLC0415

        return AsyncServiceInfo(
            kind,
            name,
            port=self._port,
            properties=dict(self._record),
            server=server,
            parsed_addresses=self._addresses,
        )

    async def _update(self, interfaces: Any, system_host: bool, server: str) -> None:
        record = self._record_now()
        addresses = self._addresses if system_host else await self._addresses_now(interfaces)
        if record == self._record and addresses == self._addresses:
            return
        assert self._zeroconf is not None
        if addresses != self._addresses and not isinstance(interfaces, list):
            await self._zeroconf.async_update_interfaces()
        self._record, self._addresses = record, addresses
        # The names probing settled on (a taken name got a number) stay.
        self._infos = [self._info(info.type, info.name, server) for info in self._infos]
        await asyncio.gather(
            *[await self._zeroconf.async_update_service(info) for info in self._infos]
        )
        log.info("mdns: re-announced %r: %s", self._name, record)

    async def _stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        zc, self._zeroconf = self._zeroconf, None
        if zc is None:
            return
        try:
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                if self._announced:
                    await zc.async_unregister_all_services()  # goodbye: TTL 0
                await zc.async_close()
        except Exception as exc:
            log.warning("mdns: goodbye failed: %s", exc)
        self._announced = False
        if self._status == "ok":
            self._status = "off"

    def _off(self, reason: str) -> None:
        self._status, self._error = "off", reason

    def _fail(self, reason: str) -> None:
        self._status, self._error = "error", reason


__all__ = ["Announcer", "instance_name"]
