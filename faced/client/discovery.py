"""Finding faced boxes on the LAN: ``discover()`` browses ``_faced._tcp`` over mDNS.

Owns: the browse, resolving each box found (address, port, TXT) into a
faced.schemas.discovery ``Box``, and the clear error when python-zeroconf is missing (it is
imported only when ``discover()`` runs, so ``import faced.client`` never needs it). Does not
own the announcement (faced.discovery, in the daemon) or the TXT's shape.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
from typing import Any, Final

from faced.schemas.discovery import FACED_SERVICE, Box, box_from_record

MISSING: Final = "discovering boxes needs python-zeroconf: pip install 'faced[mdns]'"
RESOLVE_MS: Final = 1500


async def discover(timeout_s: float = 3.0, *, interfaces: list[str] | None = None) -> list[Box]:
    """The boxes that answer within ``timeout_s`` seconds, sorted by name.

    ``interfaces``: IPv4 addresses of the interfaces to browse on (default: all). Raises
    ImportError naming the extra when python-zeroconf is not installed."""
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be more than 0, not {timeout_s!r}")
    try:
        # On a thread: importing zeroconf runs `ldconfig -p`, which would block the loop.
        await asyncio.to_thread(importlib.import_module, "zeroconf.asyncio")
        from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange  # noqa: PLC0415
        from zeroconf.asyncio import (  # noqa: PLC0415
            AsyncServiceBrowser,
            AsyncServiceInfo,
            AsyncZeroconf,
        )
    except ImportError as exc:
        raise ImportError(MISSING, name="zeroconf") from exc

    zc = AsyncZeroconf(interfaces=interfaces or InterfaceChoice.All, ip_version=IPVersion.V4Only)
    resolving: dict[str, asyncio.Task[Box | None]] = {}

    async def resolve(name: str) -> Box | None:
        info = AsyncServiceInfo(FACED_SERVICE, name)
        if not await info.async_request(zc.zeroconf, RESOLVE_MS):
            return None
        return box_from_record(
            name=name.removesuffix("." + FACED_SERVICE),
            host=info.server or "",
            addresses=tuple(_sorted(info.parsed_addresses())),
            port=info.port or 0,
            properties=info.properties,
        )

    def on_change(
        zeroconf: Any, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            task = resolving.pop(name, None)
            if task is not None:
                task.cancel()
        elif name not in resolving:
            resolving[name] = asyncio.create_task(resolve(name), name="faced-discover-resolve")

    browser = AsyncServiceBrowser(zc.zeroconf, [FACED_SERVICE], handlers=[on_change])
    try:
        await asyncio.sleep(timeout_s)
        await browser.async_cancel()
        results = await asyncio.gather(*resolving.values(), return_exceptions=True)
    finally:
        for task in resolving.values():
            task.cancel()
        await zc.async_close()
    boxes = [box for box in results if isinstance(box, Box)]
    return sorted(boxes, key=lambda box: box.name)


def _sorted(addresses: list[str]) -> list[str]:
    """LAN addresses before loopback and link-local ones."""

    def rank(address: str) -> int:
        ip = ipaddress.ip_address(address)
        return 2 if ip.is_loopback else 1 if ip.is_link_local else 0

    return sorted(addresses, key=rank)


__all__ = ["discover"]
