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

from faced.api import chat, face_sockets, openapi
from faced.api.codec import read_body, read_limited, respond
from faced.api.errors import ApiError
from faced.api.middlewares import may_see_camera_data
from faced.face import InvalidUpdate
from faced.keys import GUARD_KEY, OPENFACE_KEY
from faced.openface import AUDIO_ENVELOPE_BYTES, OpenFace
from faced.schemas.face_state import (
    AudioDoneRequest,
    AudioRequest,
    AudioResponse,
    ChatRequest,
    FaceState,
    HistoryResponse,
    SpeakRequest,
    SpeakResponse,
    StateResponse,
    StateUpdate,
)

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    """The HTTP routes of Open Face, each described where it is added."""
    router = app.router
    tags = ("open face",)
    body_errors = (400, 413, 415)
    openapi.describe(
        app,
        router.add_get("/api/state", get_state),
        openapi.Operation(summary="The merged face state", tags=tags, response=FaceState),
    )
    openapi.describe(
        app,
        router.add_post("/api/state", post_state),
        openapi.Operation(
            summary="Merge a partial state update and broadcast it",
            tags=tags,
            request=StateUpdate,
            response=StateResponse,
            errors=body_errors,
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/speak", post_speak),
        openapi.Operation(
            summary="Next audio sequence number; state speaking (or the body's)",
            tags=tags,
            request=SpeakRequest,
            request_optional=True,
            response=SpeakResponse,
            errors=body_errors,
        ),
    )
    # An empty body is 400 "missing audio", as an empty `data` is.
    wav = {"type": "string", "contentMediaType": "audio/wav", "minLength": 1}
    openapi.describe(
        app,
        router.add_post("/api/audio", post_audio),
        openapi.Operation(
            summary="Broadcast a WAV chunk to viewers (raw audio/* or JSON base64)",
            description="With a speaker (audio.sink) faced also plays it: a chunk that is "
            "not a playable WAV is 400, one longer than the whole queue 413, one that does not "
            "fit in the queue yet 429 with Retry-After; refused chunks reach no viewer.",
            tags=tags,
            request=AudioRequest,
            request_content={"audio/wav": wav, "application/octet-stream": wav},
            response=AudioResponse,
            errors=(*body_errors, 429),
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/audio-done", post_audio_done),
        openapi.Operation(
            summary="Tell viewers an audio sequence finished",
            tags=tags,
            request=AudioDoneRequest,
            request_optional=True,
            response=AudioResponse,
            errors=(400,),
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/chat", chat.post_chat),
        openapi.Operation(
            summary="Proxy a message to the OpenClaw gateway",
            tags=tags,
            request=ChatRequest,
            response_content={"application/json": {}},
            errors=(400, 413, 502, 503),
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/history", get_history),
        openapi.Operation(
            summary="The last state changes, texts and details", tags=tags, response=HistoryResponse
        ),
    )
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
    update = await read_body(request, StateUpdate, max_bytes=limit, name_the_field=True)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    try:
        openface.apply(update)
    except InvalidUpdate as exc:
        raise refused(exc) from None
    return respond(request, StateResponse(state=openface.model.state))


async def post_speak(request: web.Request) -> web.StreamResponse:
    openface = _openface(request)
    limit = openface.config.limits.agent_message_max_bytes
    body = await read_body(
        request, SpeakRequest, max_bytes=limit, allow_empty=True, name_the_field=True
    )
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
        audio = await read_limited(request.content.read, limit, lambda: _audio_too_large(limit))
        seq = openface.model.audio_seq
    else:
        envelope = 4 * math.ceil(limit / 3) + AUDIO_ENVELOPE_BYTES
        body = await read_body(
            request, AudioRequest, max_bytes=envelope, allow_empty=True, name_the_field=True
        )
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
        raise _audio_too_large(limit)
    if not audio:
        raise ApiError(400, "missing audio: 'data' is empty", extra={"field": "data"})
    openface.relay_audio(seq, audio)
    return respond(request, AudioResponse(seq=seq))


def _audio_too_large(limit: int) -> ApiError:
    return ApiError(413, f"audio too large: over {limit} bytes (limits.audio_max_bytes)")


async def post_audio_done(request: web.Request) -> web.StreamResponse:
    openface = _openface(request)
    body = await read_body(
        request, AudioDoneRequest, max_bytes=1024, allow_empty=True, name_the_field=True
    )
    seq = openface.model.audio_seq
    if body is not None and body.seq is not msgspec.UNSET:
        seq = body.seq
    openface.end_audio(seq)
    return respond(request, AudioResponse(seq=seq))


async def get_history(request: web.Request) -> web.StreamResponse:
    # Attention and speech entries are camera-derived: only for callers with the key (or
    # loopback while none is set), as the private routes.
    camera_data = may_see_camera_data(request.app[GUARD_KEY], request)
    entries = _openface(request).history(camera_data=camera_data)
    return respond(request, HistoryResponse(entries=entries, count=len(entries)))
