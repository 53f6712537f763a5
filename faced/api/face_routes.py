"""The Open Face v1 protocol's HTTP routes.

Owns: POST/GET /api/state, POST /api/speak, POST /api/audio, POST /api/audio-done,
POST /api/chat (faced.api.chat), GET /api/history, and adding the sockets and event stream
(faced.api.face_sockets). Does not own: the face, the hub or the timers — every handler
hands its request to the Open Face service (faced.openface) under ``OPENFACE_KEY``. Bodies
are JSON or msgpack (faced.api.codec); every client mistake is an ``ApiError`` naming the
field.
"""

from __future__ import annotations

import logging
import math

import msgspec
from aiohttp import web

from faced.api import chat, face_sockets
from faced.api.codec import respond
from faced.api.errors import ApiError
from faced.api.messages import read_message
from faced.face import InvalidUpdate
from faced.keys import OPENFACE_KEY
from faced.openface import AUDIO_ENVELOPE_BYTES, OpenFace
from faced.schemas.face_state import (
    AudioDoneRequest,
    AudioRequest,
    AudioResponse,
    HistoryResponse,
    SpeakRequest,
    SpeakResponse,
    StateResponse,
    StateUpdate,
)

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    """Add the Open Face routes: these HTTP routes, and the sockets and event stream of
    faced.api.face_sockets."""
    router = app.router
    router.add_get("/api/state", get_state)
    router.add_post("/api/state", post_state)
    router.add_post("/api/speak", post_speak)
    router.add_post("/api/audio", post_audio)
    router.add_post("/api/audio-done", post_audio_done)
    router.add_post("/api/chat", chat.post_chat)
    router.add_get("/api/history", get_history)
    face_sockets.add_routes(app)


def refused(exc: InvalidUpdate) -> ApiError:
    """The 400 for an update the model refused (raise it ``from None``)."""
    return ApiError(400, exc.problem.message, extra=exc.problem.extra())


def _openface(request: web.Request) -> OpenFace:
    return request.app[OPENFACE_KEY]


# --- handlers -----------------------------------------------------------------------------


async def get_state(request: web.Request) -> web.StreamResponse:
    return respond(request, _openface(request).model.state)


async def post_state(request: web.Request) -> web.StreamResponse:
    openface = request.app[OPENFACE_KEY]
    limit = openface.config.limits.agent_message_max_bytes
    update = await read_message(request, StateUpdate, max_bytes=limit)
    assert update is not None  # read_message refuses an empty body unless allow_empty
    try:
        openface.apply(update)
    except InvalidUpdate as exc:
        raise refused(exc) from None
    return respond(request, StateResponse(state=openface.model.state))


async def post_speak(request: web.Request) -> web.StreamResponse:
    openface = _openface(request)
    limit = openface.config.limits.agent_message_max_bytes
    body = await read_message(request, SpeakRequest, max_bytes=limit, allow_empty=True)
    expect_audio = body.expect_audio if body is not None else True
    try:
        seq = openface.speak(body, expect_audio)
    except InvalidUpdate as exc:
        raise refused(exc) from None
    return respond(request, SpeakResponse(seq=seq, state=openface.model.state))


def _is_raw_audio(content_type: str) -> bool:
    return content_type.startswith("audio/") or content_type == "application/octet-stream"


async def post_audio(request: web.Request) -> web.StreamResponse:
    openface = _openface(request)
    limit = openface.config.limits.audio_max_bytes
    if _is_raw_audio(request.content_type):
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"audio too large: {request.content_length} bytes, limit {limit}")
        buffer = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            buffer += chunk
            if len(buffer) > limit:
                raise ApiError(413, f"audio too large: over {limit} bytes (limits.audio_max_bytes)")
        audio = bytes(buffer)
        seq = openface.model.audio_seq
    else:
        envelope = 4 * math.ceil(limit / 3) + AUDIO_ENVELOPE_BYTES
        body = await read_message(request, AudioRequest, max_bytes=envelope, allow_empty=True)
        if body is None:
            raise ApiError(
                400,
                "missing audio: send WAV bytes (Content-Type audio/wav) or "
                '{"data": "<base64 WAV>"}',
                extra={"field": "data"},
            )
        audio = body.data
        seq = openface.model.audio_seq if body.seq is msgspec.UNSET else body.seq
    if len(audio) > limit:
        raise ApiError(413, f"audio too large: over {limit} bytes (limits.audio_max_bytes)")
    if not audio:
        raise ApiError(400, "missing audio: 'data' is empty", extra={"field": "data"})
    openface.relay_audio(seq, audio)
    return respond(request, AudioResponse(seq=seq))


async def post_audio_done(request: web.Request) -> web.StreamResponse:
    openface = _openface(request)
    body = await read_message(request, AudioDoneRequest, max_bytes=1024, allow_empty=True)
    seq = openface.model.audio_seq
    if body is not None and body.seq is not msgspec.UNSET:
        seq = body.seq
    openface.end_audio(seq)
    return respond(request, AudioResponse(seq=seq))


async def get_history(request: web.Request) -> web.StreamResponse:
    entries = _openface(request).model.history()
    return respond(request, HistoryResponse(entries=entries, count=len(entries)))
