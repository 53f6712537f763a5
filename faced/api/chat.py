"""POST /api/chat: a user's message, forwarded to the OpenClaw gateway.

Owns: the chat route and its gateway client. The message goes to
``openclaw.gateway_url + "/api/message"`` as ``{"message", "sessionKey"}`` with the gateway
token as a Bearer credential; the gateway's JSON answer comes back as is. Not configured:
503. The gateway down, answering with an error status or something other than JSON, or
slower than ``openclaw.timeout_s``: 502. The answer is read up to ``MAX_REPLY_BYTES``.
Does not own: adding the route among the Open Face routes (faced.api.face_routes) or the
chat itself (the gateway's). Why apart: the only route that calls out of the box.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp
import msgspec
from aiohttp import web

from faced.api.codec import read_body, read_limited, respond
from faced.api.errors import ApiError
from faced.config import Config, OpenClawConfig
from faced.keys import CHAT_KEY
from faced.schemas.face_state import ChatRequest

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


async def post_chat(request: web.Request) -> web.StreamResponse:
    config = request.app[CHAT_KEY].config
    gateway = request.app[CHAT_KEY].gateway
    if gateway is None:
        raise ApiError(
            503, "chat is not configured: set openclaw.gateway_url (OPENCLAW_GATEWAY_URL)"
        )
    body = await read_body(
        request, ChatRequest, max_bytes=config.server.max_body_bytes, name_the_field=True
    )
    if body is None or not body.message.strip():
        raise ApiError(
            400, "missing field 'message': a non-empty string", extra={"field": "message"}
        )
    limit = config.limits.chat_max_chars
    if len(body.message) > limit:
        raise ApiError(
            413,
            f"message too long: {len(body.message)} characters, limit {limit}",
            extra={"field": "message"},
        )
    try:
        answer = await gateway.send(body.message)
    except GatewayError as exc:
        log.warning("chat: %s", exc)
        raise ApiError(502, str(exc)) from None
    return respond(request, answer)
