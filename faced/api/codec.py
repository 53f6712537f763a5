"""Content negotiation: JSON by default, msgpack when the client asks, one schema for both.

Owns: decoding request bodies (by Content-Type) into msgspec types with clear 400/413/415
errors, and encoding responses (by Accept). Socket framing uses the same encoders.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Final, Literal, TypeVar

import msgspec
from aiohttp import hdrs, web

from faced.api.errors import ApiError
from faced.keys import MAX_BODY_KEY

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
    accept = request.headers.get(hdrs.ACCEPT)
    if not accept or accept == "*/*":  # most clients: no parsing needed
        return "json"
    return _preferred_encoding(accept)


# A client sends the same Accept on every request, and a box has few clients: parse each
# distinct header once (bounded, so odd headers cannot grow memory).
@functools.lru_cache(maxsize=256)
def _preferred_encoding(accept: str) -> Encoding:
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
    accept = request.headers.get(hdrs.ACCEPT)  # response_encoding, inline: every answer
    if accept and accept != "*/*" and _preferred_encoding(accept) == "msgpack":
        body, content_type = msgpack_encoder.encode(data), MSGPACK_CONTENT_TYPE
    else:
        body, content_type = json_encoder.encode(data), "application/json"
    return web.Response(body=body, status=status, content_type=content_type)


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


def check_syntax(body: bytes, encoding: Encoding) -> None:
    """400 "not valid JSON/msgpack" unless ``body`` parses (whatever its schema)."""
    decode(body, encoding, msgspec.Raw)


def decoder(
    schema: type[T], encoding: Encoding
) -> msgspec.json.Decoder[T] | msgspec.msgpack.Decoder[T]:
    """A reusable decoder for ``schema`` (cheaper per call than ``msgspec.*.decode``)."""
    decoders = _DECODERS.get(schema)
    if decoders is None:
        decoders = _DECODERS[schema] = (
            msgspec.json.Decoder(schema),
            msgspec.msgpack.Decoder(schema),
        )
    return decoders[1] if encoding == "msgpack" else decoders[0]


_DECODERS: Final[dict[Any, tuple[Any, Any]]] = {}
"""schema -> (JSON decoder, msgpack decoder); one entry per schema type in the code."""


async def read_bytes(
    request: web.Request, *, max_bytes: int | None = None, allow_empty: bool = False
) -> tuple[bytes, Encoding] | None:
    """The raw body of a JSON or msgpack request and its encoding, checked for type and size
    (415, 413); None for an empty body when ``allow_empty``, else 400."""
    encoding = _ENCODING_BY_CONTENT_TYPE.get(request.headers.get(hdrs.CONTENT_TYPE))
    if encoding is None:
        encoding = _body_encoding(request)
    limit = max_bytes if max_bytes is not None else request.app[MAX_BODY_KEY]
    length = request.content_length
    if length is None:
        body = await _read_at_most(request, limit)
    elif length > limit:
        raise ApiError(413, f"request body too large: {length} bytes, limit {limit}")
    elif length == 0:
        body = b""
    else:
        # The parser hands over exactly Content-Length bytes, and a small body usually came
        # with the headers: take what is buffered, wait only for the rest.
        content = request.content
        body = content.read_nowait(length)
        if len(body) < length:
            try:
                body += await content.readexactly(length - len(body))
            except asyncio.IncompleteReadError as exc:
                body += exc.partial  # the client went quiet early: decode what came (400)
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, "request body is empty: expected a JSON object")
    return body, encoding


def _body_encoding(request: web.Request) -> Encoding:
    """The encoding a request's Content-Type names (415 if neither), remembered per header
    value: clients send the same few, and parsing one costs more than the lookup."""
    content_type = request.content_type
    if content_type in MSGPACK_TYPES:
        encoding: Encoding = "msgpack"
    elif content_type in _JSON_TYPES:
        encoding = "json"
    else:
        raise ApiError(415, f"unsupported Content-Type {content_type!r}: send JSON or msgpack")
    if len(_ENCODING_BY_CONTENT_TYPE) >= 64:
        _ENCODING_BY_CONTENT_TYPE.clear()  # bounded, whatever clients send
    _ENCODING_BY_CONTENT_TYPE[request.headers.get(hdrs.CONTENT_TYPE)] = encoding
    return encoding


_ENCODING_BY_CONTENT_TYPE: Final[dict[str | None, Encoding]] = {}
"""Content-Type header as sent (None: absent) -> the body's encoding."""


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
    read = await read_bytes(request, max_bytes=max_bytes, allow_empty=allow_empty)
    if read is None:
        return None
    body, encoding = read
    try:
        return decoder(schema, encoding).decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return decode(body, encoding, schema)  # again, to word the mistake (400)


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


_JSON_TYPES: Final = frozenset({"application/json", "application/octet-stream", "text/plain", ""})
