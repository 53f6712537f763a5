"""The wire: JSON by default, msgpack when the client asks, one schema for both.

Owns: encoding (one encoder pair; responses by Accept, socket and SSE messages by the
subscriber's encoding), reading request bodies (by Content-Type, size-limited as a stream,
decoded into msgspec types with clear 400/413/415 errors), and query parameters (msgspec
Structs converted from the query string, which also give the OpenAPI parameters). Does not
own: what a route does with them, or the error middleware (faced.api.middlewares). Why:
one body reader, one query parser and one encoder pair, so every route words its 400s the
same and encodes each message once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Literal, TypeVar

import msgspec
from aiohttp import WSMsgType, hdrs, web

from faced.api.errors import ApiError
from faced.keys import MAX_BODY_KEY
from faced.schemas.face_state import Problem, describe_problem

T = TypeVar("T")

Encoding = Literal["json", "msgpack"]
StreamEncoding = Literal["json", "msgpack", "sse"]
"""What a subscriber of a stream reads: a socket's JSON or msgpack, or Server-Sent Events."""
MSGPACK_TYPES: Final = frozenset({"application/msgpack", "application/x-msgpack"})
MSGPACK_CONTENT_TYPE: Final = "application/msgpack"

json_encoder: Final = msgspec.json.Encoder()
msgpack_encoder: Final = msgspec.msgpack.Encoder()


def encode(data: Any, encoding: StreamEncoding) -> bytes:
    """``data`` as one message in ``encoding`` (SSE: the JSON as one ``data:`` event)."""
    if encoding == "msgpack":
        return msgpack_encoder.encode(data)
    encoded = json_encoder.encode(data)
    return sse_event(encoded) if encoding == "sse" else encoded


def frame_type(encoding: StreamEncoding) -> WSMsgType:
    """The WebSocket frame that carries a message in ``encoding``: JSON text, msgpack binary."""
    return WSMsgType.BINARY if encoding == "msgpack" else WSMsgType.TEXT


def decode_frame(data: str | bytes) -> Any:
    """A socket message without a schema: a text frame as JSON, a binary one as msgpack
    (msgspec.DecodeError if it is not)."""
    return msgspec.json.decode(data) if isinstance(data, str) else msgspec.msgpack.decode(data)


def is_ping(data: str | bytes) -> bool:
    """Whether a socket message is ``{"type": "ping"}`` (in either encoding)."""
    try:
        message = decode_frame(data)
    except msgspec.DecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


async def sse_response(request: web.Request) -> web.StreamResponse:
    """A prepared Server-Sent Events response: never cached, never held back by a proxy."""
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


def sse_event(json_data: bytes) -> bytes:
    """One Server-Sent Event carrying an encoded JSON message."""
    return b"data: " + json_data + b"\n\n"


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
    name_the_field: bool = False,
) -> T | None:
    """Read, size-check and decode a JSON or msgpack request body into ``schema``.

    Returns None for an empty body when ``allow_empty`` (e.g. POST /api/speak). A body that
    does not fit ``schema`` is a 400 in msgspec's own words (``"invalid request: …"``), or,
    with ``name_the_field`` (the Open Face protocol's routes), one that names the field,
    the value and what is allowed, with ``field``/``allowed``/``expected`` in the body.
    """
    read = await read_bytes(request, max_bytes=max_bytes, allow_empty=allow_empty)
    if read is None:
        return None
    body, encoding = read
    return decode_body(body, encoding, schema, name_the_field=name_the_field)


def decode_body(
    body: bytes, encoding: Encoding, schema: type[T], *, name_the_field: bool = False
) -> T:
    """``read_body``'s decoding, for a body that came another way (an MQTT command)."""
    try:
        return decoder(schema, encoding).decode(body)  # one pass when all is well
    except msgspec.ValidationError as exc:
        if encoding == "msgpack" and "Expected `bytes`, got `str`" in str(exc):
            # The document's bytes are base64 text (JSON's view of them): a msgpack client may
            # send that text as well as a bin.
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                return msgspec.convert(msgspec.msgpack.decode(body), schema)
        whole = _with_whole_floats_as_ints(body, encoding) if "got `float`" in str(exc) else None
        if whole is not None:
            body = whole  # and again below; the errors then quote what was sent
            try:
                return decoder(schema, encoding).decode(body)
            except msgspec.DecodeError:
                pass
    except msgspec.DecodeError:
        pass
    if not name_the_field:
        return decode(body, encoding, schema)  # again, to word the mistake (400)
    # A body that does not parse at all is "not valid JSON" (even if the schema noticed a
    # wrong field first); else name the field, the value and what is allowed.
    check_syntax(body, encoding)
    try:
        return decoder(schema, encoding).decode(body)
    except msgspec.ValidationError as exc:
        problem = problem_of(exc, schema, body, encoding)
        raise ApiError(400, problem.message, extra=problem.extra()) from None
    except msgspec.DecodeError:
        # A flaw the schema-less syntax check does not look at (msgpack's Raw skips the
        # strings, so a key of bad UTF-8 passes it): worded as any body that does not parse.
        return decode(body, encoding, schema)


def _with_whole_floats_as_ints(body: bytes, encoding: Encoding) -> bytes | None:
    """``body`` with every whole float (``70.0``) an int, or None if it has none.

    JSON Schema's ``integer`` is any number without a fraction, so a client (or a fuzzer)
    reading the document may send ``70.0`` where the type says ``int``; msgspec refuses a
    float there. Only tried after such a refusal, so a body that decodes pays nothing."""
    document = _loose_decode(body, encoding)
    try:
        if not _has_whole_float(document):
            return None
        converted = _whole_floats_as_ints(document)
        if encoding == "msgpack":
            return msgpack_encoder.encode(converted)
        return json_encoder.encode(converted)
    except (RecursionError, OverflowError, TypeError, msgspec.EncodeError):
        return None


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2.0**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(item) for item in value]
    return value


def _has_whole_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer() and abs(value) < 2.0**63
    if isinstance(value, dict):
        return any(_has_whole_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_whole_float(item) for item in value)
    return False


def problem_of(
    exc: msgspec.ValidationError, schema: type, data: bytes, encoding: Encoding
) -> Problem:
    """msgspec's complaint about ``data`` as ``schema``, worded for a client."""
    return describe_problem(exc, schema, _loose_decode(data, encoding))


def _loose_decode(data: bytes, encoding: Encoding) -> Any:
    """Decode without a schema (to quote a bad value); None if even that fails."""
    try:
        if encoding == "msgpack":
            return msgspec.msgpack.decode(data)
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    """The whole body of unknown length, or 413 as soon as it passes ``limit``."""
    return await read_limited(
        request.content.read,
        limit,
        lambda: ApiError(413, f"request body too large: limit {limit} bytes"),
    )


async def read_limited(
    read: Callable[[int], Awaitable[bytes]], limit: int, too_large: Callable[[], Exception]
) -> bytes:
    """Read a stream to its end (``read(n)``: a request's or a reply's ``content.read``, a
    multipart part's ``read_chunk``); raise ``too_large()`` as soon as it passes ``limit``.

    Never holds more than ``limit`` bytes plus the one that proves the excess. ``read(n)``
    returns what has arrived so far, not ``n`` bytes: a body sent in pieces (chunked, a
    slow link) is read until EOF. Callers word the error: each limit names its setting.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await read(min(_READ_CHUNK, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


_READ_CHUNK: Final = 64 * 1024
_JSON_TYPES: Final = frozenset({"application/json", "application/octet-stream", "text/plain", ""})


# --- query parameters ----------------------------------------------------------------------


class Query(msgspec.Struct, frozen=True):
    """Base of a route's query parameters: typed fields with defaults, converted from the
    query string (``strict=False``: "4" is a number, "true" a bool); the same Struct gives
    the route's OpenAPI ``parameters``.

    Subclasses may override ``prepare`` (normalise raw strings before conversion, e.g. a
    blank value that means the default), ``problem`` (a check the type cannot express) and
    ``invalid`` (their own wording of a bad value). Values are checked in the order the
    fields are declared: the first bad one is the one reported."""

    @classmethod
    def prepare(cls, params: dict[str, Any]) -> dict[str, Any]:
        return params

    @classmethod
    def problem(cls, name: str, raw: str) -> ApiError | None:
        """A problem with ``?name=raw`` that its type does not catch (default: none)."""
        return None

    @classmethod
    def invalid(cls, name: str, raw: str) -> ApiError:
        """The 400 for a bad ``?name=raw``: what is allowed (a choice) or expected."""
        kind = _field_type(cls, name)
        allowed = _choices(kind)
        if allowed is not None:
            return ApiError(
                400,
                f"invalid value for {name!r}: {raw!r}; allowed: {', '.join(allowed)}",
                extra={"field": name, "allowed": allowed},
            )
        expected = _expected(kind)
        return ApiError(
            400,
            f"invalid value for {name!r}: {raw!r}; expected "
            f"{'an' if expected[:1] in 'aeiou' else 'a'} {expected}{_bounds(kind)}",
            extra={"field": name, "expected": expected},
        )


Q = TypeVar("Q", bound=Query)


def parse_query(request: web.Request, schema: type[Q]) -> Q:
    """``request``'s query string as ``schema``; a bad value is the 400 ``schema`` words."""
    return parse_params(request.rel_url.query, schema)


def parse_params(params: Mapping[str, str], schema: type[Q]) -> Q:
    """``params`` (a query string, form fields) as ``schema``; unknown names are ignored."""
    raw = {name: params[name] for name in schema.__struct_fields__ if name in params}
    values = schema.prepare(dict(raw))
    failed: str | None = None
    # msgspec's lax mode reads the text "null" as None for an optional number or flag;
    # absent is how a client says None, so "null" there is a bad value.
    failed = next((name for name, value in values.items() if _null_text(schema, name, value)), None)
    try:
        if failed is None:
            query = msgspec.convert(values, schema, strict=False)
    except msgspec.ValidationError as exc:
        failed = _failed_field(exc, schema)
    for name in schema.__struct_fields__:
        problem = schema.problem(name, raw[name]) if name in raw else None
        if problem is None and name == failed:
            problem = schema.invalid(name, raw.get(name, ""))
        if problem is not None:
            raise problem
    assert failed is None  # the failed field raised above
    return query


def _null_text(schema: type[Query], name: str, value: object) -> bool:
    if value != "null":
        return False
    kind = _field_type(schema, name)
    if isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    return not isinstance(kind, msgspec.inspect.StrType | msgspec.inspect.LiteralType)


def _failed_field(exc: msgspec.ValidationError, schema: type[Query]) -> str:
    path = str(exc).rpartition("- at `$.")[2].rstrip("`")
    return path if path in schema.__struct_fields__ else schema.__struct_fields__[-1]


def _field_type(schema: type[Query], name: str) -> msgspec.inspect.Type:
    info = msgspec.inspect.type_info(schema)
    assert isinstance(info, msgspec.inspect.StructType)
    kind = next(f.type for f in info.fields if f.name == name)
    if isinstance(kind, msgspec.inspect.Metadata) and isinstance(
        kind.type, msgspec.inspect.UnionType
    ):
        kind = kind.type  # Annotated[T | None, Meta(description=…)]
    if isinstance(kind, msgspec.inspect.UnionType):  # T | None: T says what is wanted
        kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    return kind


def _choices(kind: msgspec.inspect.Type) -> list[str] | None:
    if isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    if isinstance(kind, msgspec.inspect.LiteralType):
        return [str(value) for value in kind.values]
    return None


def _expected(kind: msgspec.inspect.Type) -> str:
    """A field's ``Meta(extra={"expected": …})``, else its type's name."""
    if isinstance(kind, msgspec.inspect.Metadata):
        expected = (kind.extra or {}).get("expected")
        if expected is not None:
            return str(expected)
        kind = kind.type
    return type(kind).__name__.removesuffix("Type").lower()


def _bounds(kind: msgspec.inspect.Type) -> str:
    """`` from LOW to HIGH`` (or one side) for a number field with bounds, else '' (also
    when the field words what it expects itself)."""
    if isinstance(kind, msgspec.inspect.Metadata):
        if (kind.extra or {}).get("expected") is not None:
            return ""
        kind = kind.type
    if not isinstance(kind, msgspec.inspect.IntType | msgspec.inspect.FloatType):
        return ""
    low = kind.ge if kind.ge is not None else kind.gt
    high = kind.le if kind.le is not None else kind.lt
    if low is not None and high is not None:
        return f" from {low} to {high}"
    if low is not None:
        return f" of at least {low}"
    return "" if high is None else f" of at most {high}"


def query_parameters(schema: type[Query]) -> tuple[dict[str, Any], ...]:
    """The OpenAPI ``parameters`` (``in: query``) of ``schema``'s fields."""
    _, components = msgspec.json.schema_components([schema])
    properties = components[schema.__name__].get("properties", {})
    parameters = []
    for name, described in properties.items():
        field_schema = {k: v for k, v in described.items() if k != "anyOf"}
        options = described.get("anyOf")
        if options is not None:  # T | None: absent is how a client says None
            rest = [o for o in options if o.get("type") != "null"]
            field_schema.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
        if field_schema.get("default", ...) is None:
            del field_schema["default"]
        if field_schema.get("type") == "boolean":
            # A flag in a query or form is text: 1 and 0 are read as true and false too.
            del field_schema["type"]
            field_schema["anyOf"] = [{"type": "boolean"}, {"enum": [0, 1]}]
        parameters.append({"name": name, "in": "query", "schema": field_schema})
    return tuple(parameters)


# --- the encoding of a socket ----------------------------------------------------------------


class EncodingQuery(Query, frozen=True):
    """``?encoding=``: how a socket frames its messages (msgpack: binary frames)."""

    encoding: Encoding = "json"
