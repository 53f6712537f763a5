"""The OpenClaw gateway client: where POST /api/chat forwards a user's message.

Owns: the client (one connection pool for the daemon, open while faced runs) and what
counts as a usable answer. The message goes to ``openclaw.gateway_url + "/api/message"``
as ``{"message", "sessionKey"}`` with the gateway token as a Bearer credential; the
gateway's JSON answer comes back as is, read up to ``MAX_REPLY_BYTES``. Does not own: the
route, its limits and statuses (faced.api.chat). Why apart: the route is a thin door; the
client has a lifetime of its own, started and stopped by the composition root.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import msgspec
from aiohttp import web

from faced.api.codec import read_limited
from faced.config import Config, OpenClawConfig

log = logging.getLogger(__name__)

MAX_REPLY_BYTES: Final = 1024 * 1024


class GatewayError(Exception):
    """The gateway could not give a usable answer; the message says why."""


class Gateway:
    """An HTTP client of the OpenClaw gateway, one connection pool for the daemon."""

    def __init__(self, config: OpenClawConfig) -> None:
        if not config.gateway_url:
            raise ValueError("openclaw.gateway_url is not set")
        self.url = config.gateway_url.rstrip("/") + "/api/message"
        self._session_key = config.session_key
        self._headers = {"Content-Type": "application/json"}
        if config.gateway_token:
            self._headers["Authorization"] = f"Bearer {config.gateway_token}"
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, message: str) -> Any:
        """The gateway's decoded JSON answer to ``message``; GatewayError otherwise."""
        if self._session is None:
            raise GatewayError("gateway client not started")
        body = msgspec.json.encode({"message": message, "sessionKey": self._session_key})
        try:
            async with self._session.post(self.url, data=body, headers=self._headers) as reply:
                data = await read_limited(
                    reply.content.read,
                    MAX_REPLY_BYTES,
                    lambda: GatewayError(f"gateway answer larger than {MAX_REPLY_BYTES} bytes"),
                )
                status = reply.status
        except TimeoutError:
            raise GatewayError(f"gateway did not answer within {self._timeout.total:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise GatewayError(f"gateway unreachable: {exc or type(exc).__name__}") from None
        try:
            answer = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise GatewayError(
                f"gateway answered {status} with something other than JSON"
            ) from None
        if status >= 400:
            raise GatewayError(f"gateway answered {status}: {_excerpt(answer)}")
        return answer


def _excerpt(answer: Any) -> str:
    text = msgspec.json.encode(answer).decode()
    return text if len(text) <= 200 else text[:197] + "…"


class Chat:
    """The chat route's settings and its gateway client (None when not configured)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.gateway = Gateway(config.openclaw) if config.openclaw.gateway_url else None

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the gateway client's connection pool, open while faced runs."""
        del app
        gateway = self.gateway
        if gateway is not None:
            gateway.start()
        try:
            yield
        finally:
            if gateway is not None:
                await gateway.close()


__all__ = ["MAX_REPLY_BYTES", "Chat", "Gateway", "GatewayError"]
