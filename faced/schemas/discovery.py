"""What a faced box says of itself over mDNS/DNS-SD: the service types and the TXT record.

Owns: the service types, the TXT keys and their values (built by the daemon's announcer,
read by the client's ``discover()``), and ``Box``, one box found on the LAN. Does not own the
announcing (faced.discovery) or the browsing (faced.client.discovery). Why apart: both sides
read the same record and neither may import the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

FACED_SERVICE: Final = "_faced._tcp.local."
HTTP_SERVICE: Final = "_http._tcp.local."
"""Browsers' service type: the same instance, so a DNS-SD browser opens the viewer."""

API: Final = "openface-v1"
VIEWER_PATH: Final = "/"
OPENAPI_PATH: Final = "/openapi.json"

# RFC 6763 §6.4: short keys (nine characters or fewer); `path` is the _http._tcp convention.
TXT_VERSION: Final = "version"
TXT_API: Final = "api"
TXT_KEY: Final = "key"
"""``yes`` when the API key is required for writes and camera data, else ``no``."""
TXT_PATH: Final = "path"
TXT_OPENAPI: Final = "openapi"


def txt_record(*, version: str, key_required: bool) -> dict[str, str]:
    """The TXT record of both service types."""
    return {
        TXT_VERSION: version,
        TXT_API: API,
        TXT_KEY: "yes" if key_required else "no",
        TXT_PATH: VIEWER_PATH,
        TXT_OPENAPI: OPENAPI_PATH,
    }


class Box(msgspec.Struct, frozen=True, kw_only=True):
    """One faced box found on the LAN."""

    name: str
    """The instance name (``mdns.name``, by default "faced on <host name>")."""
    host: str
    """The host name its service points at (``faced.local``)."""
    addresses: tuple[str, ...]
    port: int
    version: str | None
    api: str | None
    key_required: bool | None
    """None when the box did not say."""
    path: str
    """The viewer's path."""
    openapi: str | None

    @property
    def url(self) -> str:
        """The box's base URL: its first address, else its host name."""
        host = self.addresses[0] if self.addresses else self.host.rstrip(".")
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace")


def box_from_record(
    *,
    name: str,
    host: str,
    addresses: tuple[str, ...],
    port: int,
    properties: Mapping[bytes, bytes | None],
) -> Box:
    """A Box from a resolved service; TXT values arrive as bytes and may be missing."""
    key = _text(properties.get(TXT_KEY.encode()))
    return Box(
        name=name,
        host=host,
        addresses=addresses,
        port=port,
        version=_text(properties.get(TXT_VERSION.encode())),
        api=_text(properties.get(TXT_API.encode())),
        key_required=None if key is None else key == "yes",
        path=_text(properties.get(TXT_PATH.encode())) or VIEWER_PATH,
        openapi=_text(properties.get(TXT_OPENAPI.encode())),
    )


__all__ = [
    "API",
    "FACED_SERVICE",
    "HTTP_SERVICE",
    "OPENAPI_PATH",
    "VIEWER_PATH",
    "Box",
    "box_from_record",
    "txt_record",
]
