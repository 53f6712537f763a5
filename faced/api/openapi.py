"""The OpenAPI 3.1 document of every route, built from the msgspec schemas the code uses.

Owner: the analyze API (issue 5). Modules describe an operation where they register its
route::

    openapi.describe(app, router.add_post("/v1/analyze", handler),
                     summary="…", request=Base64Request, response=Analysis)

and the document (``GET /openapi.json``) is built once, on first request, by walking the
app's router: every registered route appears, described or not (an undescribed one gets
its handler's docstring and the generic error body), so the document cannot drift from
the routes. Request and response types are turned into JSON Schema by
``msgspec.json.schema_components`` — the same types that validate and encode — and the
access class of each route comes from ``faced.api.access`` (``x-faced-access`` plus the
``security`` requirement). Sockets are GET operations answering 101, with their message
types under ``x-faced-websocket``.

Routes of modules whose owners have not described them yet are described in
``_CORE_OPERATIONS`` below, keyed by (method, path); a module's own ``describe`` call wins.

``GET /docs`` serves a small, dependency-free API browser (faced/web/static/docs/: no CDN,
no inline script, so the daemon's CSP holds) that renders /openapi.json.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from faced import __version__
from faced.api.access import Access
from faced.api.codec import MSGPACK_CONTENT_TYPE
from faced.keys import ACCESS_KEY, OPENAPI_KEY

log = logging.getLogger(__name__)

DOCS_PAGE: Final = Path(__file__).resolve().parents[1] / "web" / "static" / "docs" / "index.html"
_REF_TEMPLATE: Final = "#/components/schemas/{name}"
_PATH_PARAM: Final = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


class ErrorBody(msgspec.Struct):
    """Every error, whatever the route: one human-readable sentence (plus, for a bad
    field, ``field`` and ``allowed``)."""

    error: str


@dataclass(frozen=True)
class Operation:
    """What the document says of one (method, path)."""

    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    request: Any = None
    """A msgspec-compatible type: the JSON / msgpack request body."""
    request_optional: bool = False
    request_content: Mapping[str, Any] | None = None
    """Other request media types -> JSON Schema (e.g. multipart/form-data, image/*)."""
    response: Any = None
    """A msgspec-compatible type: the 200 JSON / msgpack body."""
    response_content: Mapping[str, Any] | None = None
    """Non-JSON 200 bodies: media type -> JSON Schema (pages, streams)."""
    errors: tuple[int, ...] = ()
    """Statuses this operation answers with ErrorBody besides the generic ones."""
    parameters: tuple[Mapping[str, Any], ...] = ()
    websocket_receives: Any = None
    """Socket: the type (or a tuple of alternative types) of messages the server accepts."""
    websocket_sends: Any = None
    """Socket: the type (or a tuple of alternative types) of messages the server sends."""


@dataclass
class ApiDocs:
    """The registry: operations described by modules; the built document, cached."""

    operations: dict[tuple[str, str], Operation] = field(default_factory=dict)
    document: bytes | None = None


def docs_of(app: web.Application) -> ApiDocs:
    if OPENAPI_KEY not in app:
        app[OPENAPI_KEY] = ApiDocs()
    return app[OPENAPI_KEY]


def describe(app: web.Application, route: AbstractRoute, operation: Operation) -> AbstractRoute:
    """Describe ``route``; returns it so registration reads as one expression."""
    docs_of(app).operations[(route.method, _route_path(route))] = operation
    return route


def setup(app: web.Application) -> None:
    """Register GET /openapi.json and GET /docs (both public: they describe, never serve
    data; the document says which routes need the key)."""
    docs_of(app)
    describe(
        app,
        app.router.add_get("/openapi.json", openapi_json),
        Operation(
            summary="This document: OpenAPI 3.1 of every route of the daemon",
            tags=("meta",),
            response_content={"application/json": {"type": "object"}},
        ),
    )
    describe(
        app,
        app.router.add_get("/docs", docs_page),
        Operation(
            summary="API browser for this document (served from the package, no CDN)",
            tags=("meta",),
            response_content={"text/html": {"type": "string"}},
        ),
    )


async def openapi_json(request: web.Request) -> web.StreamResponse:
    docs = docs_of(request.app)
    if docs.document is None:
        docs.document = msgspec.json.encode(build_document(request.app))
    return web.Response(body=docs.document, content_type="application/json")


async def docs_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(DOCS_PAGE, headers={"Cache-Control": "no-cache"})


# --- building the document ---------------------------------------------------------------


def _route_path(route: AbstractRoute) -> str:
    resource = route.resource
    canonical = resource.canonical if resource is not None else ""
    return _PATH_PARAM.sub(r"{\1}", canonical)


def _access_doc(access: Access) -> tuple[list[dict[str, list[str]]], str]:
    if access is Access.PUBLIC:
        return [], "Public."
    schemes: list[dict[str, list[str]]] = [
        {"bearer": []},
        {"apiKeyHeader": []},
        {"tokenQuery": []},
        {"apiKeyQuery": []},
    ]
    text = {
        Access.KEY: "Needs the API key when one is set (auth.api_key / FACE_API_KEY).",
        Access.PRIVATE: "Camera-derived: needs the API key when one is set; without a key, "
        "loopback clients only.",
        Access.HANDSHAKE: "Needs the API key when one is set: as a header or query "
        'parameter, or as the first message {"token": KEY}.',
    }[access]
    return [*schemes, {}] if access is Access.HANDSHAKE else schemes, text


def build_document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s routes (call after setup: routes are final)."""
    described = {**_core_operations(), **docs_of(app).operations}
    policy = app[ACCESS_KEY]
    types: list[Any] = [ErrorBody]
    plan: list[tuple[str, str, AbstractRoute, Operation]] = []
    routes = list(app.router.routes())
    gets = {_route_path(r) for r in routes if r.method == "GET"}
    for route in routes:
        method = route.method
        path = _route_path(route)
        if method == "HEAD" and path in gets:
            continue  # aiohttp's automatic HEAD for a GET: documented by the GET
        operation = described.get((method, path)) or _fallback(route)
        plan.append((method, path, route, operation))
        for kind in (
            operation.request,
            operation.response,
            *_alternatives(operation.websocket_receives),
            *_alternatives(operation.websocket_sends),
        ):
            if kind is not None:
                types.append(kind)
    refs, components = msgspec.json.schema_components(types, ref_template=_REF_TEMPLATE)
    schema_of = dict(zip((id(t) for t in types), refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, route, operation in plan:
        paths.setdefault(path, {})[method.lower()] = _operation_doc(
            method, path, operation, policy.declared(route), schema_of
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "faced",
            "version": __version__,
            "summary": "The face of a LAN AI agent: Open Face v1, analyze API, live tracking.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "tokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
        },
    }


def _alternatives(kinds: Any) -> tuple[Any, ...]:
    if kinds is None:
        return ()
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _one_of(kinds: Any, schema_of: Mapping[int, Mapping[str, Any]]) -> Any:
    refs = [schema_of[id(kind)] for kind in _alternatives(kinds) if kind is not None]
    if not refs:
        return None
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"


def _fallback(route: AbstractRoute) -> Operation:
    doc = (getattr(route.handler, "__doc__", None) or "").strip()
    summary = doc.splitlines()[0] if doc else f"{route.method} {_route_path(route)}"
    return Operation(summary=summary)


def _content(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}, MSGPACK_CONTENT_TYPE: {"schema": schema}}


def _operation_doc(
    method: str,
    path: str,
    operation: Operation,
    access: Access,
    schema_of: Mapping[int, Mapping[str, Any]],
) -> dict[str, Any]:
    security, access_text = _access_doc(access)
    description = " ".join(part for part in (operation.description, access_text) if part)
    doc: dict[str, Any] = {
        "summary": operation.summary,
        "description": description,
        "operationId": f"{method.lower()}_{_slug(path)}",
        "security": security,
        "x-faced-access": access.value,
    }
    if operation.tags:
        doc["tags"] = list(operation.tags)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
    ]
    parameters += [dict(p) for p in operation.parameters]
    if parameters:
        doc["parameters"] = parameters
    request_content: dict[str, Any] = {}
    if operation.request is not None:
        request_content.update(_content(schema_of[id(operation.request)]))
    for media, schema in (operation.request_content or {}).items():
        request_content[media] = {"schema": dict(schema)}
    if request_content:
        doc["requestBody"] = {
            "required": not operation.request_optional,
            "content": request_content,
        }
    error = _content(schema_of[id(ErrorBody)])
    responses: dict[str, Any] = {}
    is_socket = operation.websocket_receives is not None or operation.websocket_sends is not None
    if is_socket:
        responses["101"] = {"description": "Switching Protocols: a WebSocket"}
        doc["x-faced-websocket"] = {
            "receives": _one_of(operation.websocket_receives, schema_of),
            "sends": _one_of(operation.websocket_sends, schema_of),
        }
    elif operation.response is not None:
        responses["200"] = {
            "description": "OK",
            "content": _content(schema_of[id(operation.response)]),
        }
    elif operation.response_content:
        responses["200"] = {
            "description": "OK",
            "content": {m: {"schema": dict(s)} for m, s in operation.response_content.items()},
        }
    else:
        responses["200"] = {"description": "OK"}
    statuses = set(operation.errors)
    if access is not Access.PUBLIC:
        statuses |= {401, 403}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= {429}
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": error,
        }
    responses["default"] = {"description": "Any other error", "content": error}
    doc["responses"] = responses
    return doc


_STATUS_TEXT: Final = {
    400: "Bad request: the error names the field",
    401: "API key missing",
    403: "API key wrong, or a private route off loopback without a key",
    404: "Not found",
    413: "Body, image or message too large",
    415: "Unsupported media type",
    422: "The image cannot be decoded",
    429: "Rate limited (Retry-After)",
    502: "Upstream gateway failed",
    503: "Busy or not configured (Retry-After when busy)",
}


# --- routes of other modules, until their owners describe them ---------------------------


def _schemas(module: str, *names: str) -> list[Any]:
    """Types by name from a schema module; None for any that does not exist (yet)."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return [None] * len(names)
    return [getattr(found, name, None) for name in names]


def _core_operations() -> dict[tuple[str, str], Operation]:
    from faced.schemas.analysis import Analysis  # noqa: PLC0415

    (
        state_update,
        face_state,
        state_response,
        speak_request,
        speak_response,
        audio_request,
        audio_response,
        audio_done_request,
        chat_request,
        history_response,
    ) = _schemas(
        "faced.schemas.face_state",
        "StateUpdate",
        "FaceState",
        "StateResponse",
        "SpeakRequest",
        "SpeakResponse",
        "AudioRequest",
        "AudioResponse",
        "AudioDoneRequest",
        "ChatRequest",
        "HistoryResponse",
    )
    preset_list, viewer_config, viewer_config_update = _schemas(
        "faced.schemas.presets", "PresetList", "ViewerConfig", "ViewerConfigUpdate"
    )
    tracking_result, emotion_state = _schemas(
        "faced.schemas.tracking", "TrackingResult", "EmotionState"
    )
    html = {"text/html": {"type": "string"}}
    of = ("open face",)
    return {
        ("GET", "/health"): Operation(
            summary="Health: status, version, uptime, model, components",
            tags=("meta",),
            response_content={"application/json": {"type": "object"}},
        ),
        ("GET", "/api/health"): Operation(
            summary="Health (alias of /health)",
            tags=("meta",),
            response_content={"application/json": {"type": "object"}},
        ),
        ("GET", "/"): Operation(
            summary="The viewer page (the face)", tags=("pages",), response_content=html
        ),
        ("GET", "/dashboard"): Operation(
            summary="The dashboard page", tags=("pages",), response_content=html
        ),
        ("GET", "/static/{name}"): Operation(
            summary="Static files of the viewer, dashboard and API browser",
            tags=("pages",),
            errors=(404,),
        ),
        ("GET", "/api/state"): Operation(
            summary="The merged face state", tags=of, response=face_state
        ),
        ("POST", "/api/state"): Operation(
            summary="Merge a partial state update and broadcast it",
            tags=of,
            request=state_update,
            response=state_response,
            errors=(400, 413, 415),
        ),
        ("POST", "/api/speak"): Operation(
            summary="Next audio sequence number; state speaking (or the body's)",
            tags=of,
            request=speak_request,
            request_optional=True,
            response=speak_response,
            errors=(400, 413, 415),
        ),
        ("POST", "/api/audio"): Operation(
            summary="Broadcast a WAV chunk to viewers (raw audio/* or JSON base64)",
            description="With a speaker (audio.sink) faced also plays it: a chunk that is "
            "not a playable WAV is 400, one longer than the whole queue 413, one that does not "
            "fit in the queue yet 429 with Retry-After; refused chunks reach no viewer.",
            tags=of,
            request=audio_request,
            request_content={
                "audio/wav": {"type": "string", "contentMediaType": "audio/wav"},
                "application/octet-stream": {"type": "string", "contentMediaType": "audio/wav"},
            },
            response=audio_response,
            errors=(400, 413, 415, 429),
        ),
        ("POST", "/api/audio-done"): Operation(
            summary="Tell viewers an audio sequence finished",
            tags=of,
            request=audio_done_request,
            request_optional=True,
            response=audio_response,
            errors=(400,),
        ),
        ("POST", "/api/chat"): Operation(
            summary="Proxy a message to the OpenClaw gateway",
            tags=of,
            request=chat_request,
            response_content={"application/json": {}},
            errors=(400, 413, 502, 503),
        ),
        ("GET", "/api/history"): Operation(
            summary="The last state changes, texts and details", tags=of, response=history_response
        ),
        ("GET", "/ws/viewer"): Operation(
            summary="Viewer socket: state, history, audio; ping -> pong",
            tags=of,
            websocket_sends=face_state,
            errors=(503,),
        ),
        ("GET", "/ws/agent"): Operation(
            summary="Agent socket: every text message is a state update",
            tags=of,
            websocket_receives=state_update,
            websocket_sends=face_state,
            errors=(503,),
        ),
        ("GET", "/api/events"): Operation(
            summary="Server-Sent Events: what viewers receive",
            tags=of,
            response_content={"text/event-stream": {"type": "string"}},
        ),
        ("GET", "/api/v1/presets"): Operation(
            summary="Installed face packs", tags=("viewer",), response=preset_list
        ),
        ("GET", "/api/config"): Operation(
            summary="The viewer config (which face pack)", tags=("viewer",), response=viewer_config
        ),
        ("PUT", "/api/config"): Operation(
            summary="Choose the face pack every viewer shows",
            tags=("viewer",),
            request=viewer_config_update,
            response=viewer_config,
            errors=(400, 404),
        ),
        ("GET", "/api/tracking"): Operation(
            summary="The latest live tracking result of the box's camera",
            tags=("tracking",),
            response=tracking_result,
            errors=(503,),
        ),
        ("GET", "/api/emotion_state"): Operation(
            summary="Current blendshape intensities of the person in front of the camera",
            tags=("tracking",),
            response=emotion_state,
            errors=(503,),
        ),
        ("GET", "/ws/tracking"): Operation(
            summary="Live tracking results (?encoding=msgpack, ?fields=, ?fps=)",
            tags=("tracking",),
            websocket_sends=tracking_result if tracking_result is not None else Analysis,
            errors=(503,),
        ),
        ("GET", "/api/camera/preview.mjpg"): Operation(
            summary="Camera preview (MJPEG) for aiming the camera; off unless camera.preview",
            tags=("tracking",),
            response_content={"multipart/x-mixed-replace": {"type": "string"}},
            errors=(404, 503),
        ),
    }


__all__ = [
    "ApiDocs",
    "ErrorBody",
    "Operation",
    "build_document",
    "describe",
    "docs_of",
    "setup",
]
