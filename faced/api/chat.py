"""POST /api/chat: a user's message, forwarded to the OpenClaw gateway.

Owns: the route — its body, limits and statuses. Not configured: 503. The gateway down,
answering with an error status or something other than JSON, or slower than
``openclaw.timeout_s``: 502. Does not own: the gateway client (faced.gateway, under
``CHAT_KEY``), or adding the route among the Open Face routes (faced.api.face_routes).
"""

from __future__ import annotations

import logging

from aiohttp import web

from faced.api.codec import read_body, respond
from faced.api.errors import ApiError
from faced.gateway import GatewayError
from faced.keys import CHAT_KEY
from faced.schemas.face_state import ChatRequest

log = logging.getLogger(__name__)


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
    assert body is not None  # read_body refuses an empty body; ChatRequest a blank message
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
