"""The OpenAPI 3.1 document of every route, built from the msgspec schemas the code uses.

Owns: the document and its two routes (``GET /openapi.json``, ``GET /docs``). Does not own
any route's description (why: a description beside its route cannot drift from it): each
module describes an operation where it registers the route::

    openapi.describe(app, router.add_post("/v1/analyze", handler),
                     openapi.Operation(summary="…", request=Base64Request, response=Analysis))

The document is built once, on first request, by walking the app's router: every
registered route appears, so the document cannot drift from the routes (one registered
without a description appears with an empty summary and a warning, which
tests/api/test_openapi.py refuses). Request, response and query types are turned into JSON
Schema by ``msgspec.json.schema_components`` — the same types that validate and encode;
query parameters come from the route's ``faced.api.codec.Query`` Struct. Every error is a
``faced.schemas.errors.ErrorBody``. The access class of each route comes from
``faced.api.access`` (``x-faced-access`` plus the ``security`` requirement). Sockets are
GET operations answering 101, with their message types under ``x-faced-websocket``.

``GET /docs`` serves a small, dependency-free API browser (faced/web/static/docs/: no CDN,
no inline script, so the daemon's CSP holds) that renders /openapi.json.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import msgspec
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from faced import __version__
from faced.api.access import Access
from faced.api.codec import MSGPACK_CONTENT_TYPE, Query, query_parameters
from faced.keys import ACCESS_KEY, OPENAPI_KEY
from faced.schemas.errors import ErrorBody

log = logging.getLogger(__name__)

DOCS_PAGE: Final = Path(__file__).resolve().parents[1] / "web" / "static" / "docs" / "index.html"
_REF_TEMPLATE: Final = "#/components/schemas/{name}"
_PATH_PARAM: Final = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


@dataclass(frozen=True)
class Operation:
    """What the document says of one (method, path)."""

    summary: str
    description: str = ""
    tags: tuple[str, ...] = ()
    request: Any = None
    """A msgspec-compatible type: the JSON / msgpack request body."""
    request_of: Callable[[web.Application], Any] | None = None
    """Instead of ``request``: the type, from the app once it has started (a choice known
    only then, e.g. the installed face packs)."""
    request_optional: bool = False
    request_content: Mapping[str, Any] | None = None
    """Other request media types -> JSON Schema (e.g. multipart/form-data, image/*)."""
    response: Any = None
    """A msgspec-compatible type: the success body (JSON / msgpack)."""
    status: int = 200
    """The success status (e.g. 202 for a restart that has only begun)."""
    response_content: Mapping[str, Any] | None = None
    """Non-JSON 200 bodies: media type -> JSON Schema (pages, streams)."""
    errors: tuple[int, ...] = ()
    """Statuses this operation answers with ErrorBody besides those every route of its kind
    can answer, which the document adds itself: 401/403 (not public), 429 (writes), 400 (a
    body or query parameters), 408/413/415 (a JSON or msgpack body), 404 (path parameters)."""
    query: type[Query] | None = None
    """The route's query parameters (``parameters``, ``in: query``)."""
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
    described = docs_of(app).operations
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
        operation = described.get((method, path)) or _undescribed(method, path)
        if operation.request_of is not None:
            operation = replace(operation, request=operation.request_of(app), request_of=None)
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


def _undescribed(method: str, path: str) -> Operation:
    log.warning(
        "%s %s has no OpenAPI description: describe it where it is registered", method, path
    )
    return Operation(summary="")


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
    if operation.query is not None:
        parameters += query_parameters(operation.query)
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
    ok = str(operation.status)
    is_socket = operation.websocket_receives is not None or operation.websocket_sends is not None
    if is_socket:
        responses["101"] = {"description": "Switching Protocols: a WebSocket"}
        doc["x-faced-websocket"] = {
            "receives": _one_of(operation.websocket_receives, schema_of),
            "sends": _one_of(operation.websocket_sends, schema_of),
        }
    elif operation.response is not None:
        responses[ok] = {
            "description": _STATUS_TEXT.get(operation.status, "OK"),
            "content": _content(schema_of[id(operation.response)]),
        }
    elif operation.response_content:
        responses[ok] = {
            "description": _STATUS_TEXT.get(operation.status, "OK"),
            "content": {m: {"schema": dict(s)} for m, s in operation.response_content.items()},
        }
    else:
        responses[ok] = {"description": _STATUS_TEXT.get(operation.status, "OK")}
    # No "default": every status a route can answer is listed, so a client (and the fuzz
    # test, tests/fuzz/test_openapi_fuzz.py) can rely on the list.
    for status in sorted(_statuses(method, operation, access, parameters)):
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": error,
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
    doc["responses"] = responses
    return doc


def _statuses(
    method: str, operation: Operation, access: Access, parameters: list[dict[str, Any]]
) -> set[int]:
    """The error statuses of an operation: its own and those of every route of its kind."""
    statuses = set(operation.errors)
    if access is not Access.PUBLIC:
        statuses |= {401, 403}
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        statuses |= {429}  # the per-client write limit (faced.api.ratelimit)
    # faced.api.codec.read_body; 408 when the body trickles in below the floor
    # (faced.api.connections)
    if operation.request is not None or operation.request_content:
        statuses |= {400, 408, 413, 415}
    if any(p["in"] == "query" for p in parameters):
        statuses |= {400}  # faced.api.codec.parse_query
    if any(p["in"] == "path" for p in parameters):
        statuses |= {404}
    return statuses


FORM_FIELD_NAMES: Final = {"pattern": '^[^\\x00-\\x08\\x0a-\\x1f\\x7f"]*$'}
"""A multipart form's field names (``propertyNames``): a part's name travels in its
Content-Disposition header, where control characters are refused (400) and a quote ends it."""

_HEADERS: Final = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    429: {
        "Retry-After": {
            "description": "Seconds to wait",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
            "required": True,
        }
    },
}


_STATUS_TEXT: Final = {
    202: "Accepted: the work is queued",
    400: "Bad request: the error names the field",
    401: "API key missing",
    403: "API key wrong, or a private route off loopback without a key",
    404: "Not found",
    408: "The body came in too slowly (server.body_min_bytes_per_s)",
    413: "Body, image or message too large",
    409: "Conflict: not possible now, or not on this device",
    415: "Unsupported media type",
    422: "The image cannot be decoded",
    429: "Rate limited (Retry-After)",
    502: "Upstream gateway failed",
    503: "Busy or not configured (Retry-After when busy)",
    507: "The state directory is full: the setting was not saved, the old one stays",
}


__all__ = [
    "FORM_FIELD_NAMES",
    "ApiDocs",
    "Operation",
    "build_document",
    "describe",
    "docs_of",
    "setup",
]
