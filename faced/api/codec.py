"""Content negotiation: JSON by default, msgpack when the client asks, one schema for both.

Owns: decoding request bodies (by Content-Type) into msgspec types with clear 400/413/415
errors, and encoding responses (by Accept). Socket framing uses the same encoders.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeVar

import msgspec
from aiohttp import web

from faced.api.errors import ApiError

T = TypeVar("T")

Encoding = Literal["json", "msgpack"]
MSGPACK_TYPES: Final = frozenset({"application/msgpack", "application/x-msgpack"})
MSGPACK_CONTENT_TYPE: Final = "application/msgpack"

json_encoder: Final = msgspec.json.Encoder()
msgpack_encoder: Final = msgspec.msgpack.Encoder()


def encode(data: Any, encoding: Encoding) -> bytes:
    if encoding == "msgpack":
        return msgpack_encoder.encode(data)
    return json_encoder.encode(data)


def request_encoding(request: web.Request) -> Encoding:
    """The encoding of the request body, from its Content-Type."""
    return "msgpack" if request.content_type in MSGPACK_TYPES else "json"


def response_encoding(request: web.Request) -> Encoding:
    """msgpack when Accept prefers it over JSON, else JSON."""
    accept = request.headers.get("Accept", "")
    best: tuple[float, Encoding] = (-1.0, "json")
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        kind: Encoding | None = (
            "msgpack"
            if media in MSGPACK_TYPES
            else "json"
            if media in ("application/json", "application/*", "*/*")
            else None
        )
        if kind is not None and (quality > best[0] or (quality == best[0] and kind == "json")):
            best = (quality, kind)
    return best[1]


def respond(request: web.Request, data: Any, status: int = 200) -> web.Response:
    encoding = response_encoding(request)
    content_type = MSGPACK_CONTENT_TYPE if encoding == "msgpack" else "application/json"
    return web.Response(body=encode(data, encoding), status=status, content_type=content_type)


def decode(body: bytes, encoding: Encoding, schema: type[T]) -> T:
    """Decode and validate; a problem becomes a 400 naming the field."""
    try:
        if encoding == "msgpack":
            return msgspec.msgpack.decode(body, type=schema)
        return msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid request: {exc}") from None
    except msgspec.DecodeError as exc:
        name = "msgpack" if encoding == "msgpack" else "JSON"
        raise ApiError(400, f"request body is not valid {name}: {exc}") from None


async def read_body(
    request: web.Request,
    schema: type[T],
    *,
    max_bytes: int | None = None,
    allow_empty: bool = False,
) -> T | None:
    """Read, size-check and decode a JSON or msgpack request body into ``schema``.

    Returns None for an empty body when ``allow_empty`` (e.g. POST /api/speak).
    """
    if request.content_type not in MSGPACK_TYPES and request.content_type not in (
        "application/json",
        "application/octet-stream",
        "text/plain",
        "",
    ):
        raise ApiError(
            415, f"unsupported Content-Type {request.content_type!r}: send JSON or msgpack"
        )
    limit = max_bytes if max_bytes is not None else request.app[MAX_BODY_KEY]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413, f"request body too large: {request.content_length} bytes, limit {limit}"
        )
    body = await _read_at_most(request, limit)
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, "request body is empty: expected a JSON object")
    return decode(body, request_encoding(request), schema)


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it passes ``limit``.

    ``StreamReader.read(n)`` returns what has arrived so far, not ``n`` bytes: a body sent
    in pieces (chunked, or a slow link) must be read until EOF.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body too large: limit {limit} bytes")
    return b"".join(chunks)


MAX_BODY_KEY: Final = web.AppKey("max_body_bytes", int)
