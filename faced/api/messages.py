"""Request bodies as protocol messages: decode into a schema, word every mistake.

Owner: the Open Face protocol (issue 3). ``read_message`` builds on faced.api.codec
(Content-Type, size limits, empty bodies) and turns a schema mismatch into a 400 whose
error names the field, the value, and what is allowed (faced.schemas.face_state).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from faced.api.codec import Encoding, check_syntax, decoder, read_bytes
from faced.api.errors import ApiError
from faced.schemas.face_state import Problem, describe_problem

T = TypeVar("T")


def loose_decode(data: bytes, encoding: Encoding) -> Any:
    """Decode without a schema (to quote a bad value); None if even that fails."""
    try:
        if encoding == "msgpack":
            return msgspec.msgpack.decode(data)
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return None


def problem_of(
    exc: msgspec.ValidationError, schema: type, data: bytes, encoding: Encoding
) -> Problem:
    return describe_problem(exc, schema, loose_decode(data, encoding))


async def read_message(
    request: web.Request, schema: type[T], *, max_bytes: int, allow_empty: bool = False
) -> T | None:
    """A JSON or msgpack body as ``schema``; None for an empty body when ``allow_empty``."""
    read = await read_bytes(request, max_bytes=max_bytes, allow_empty=allow_empty)
    if read is None:
        return None
    body, encoding = read
    try:
        return decoder(schema, encoding).decode(body)  # one pass when all is well
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    # Something is wrong: a body that does not parse at all is "not valid JSON" (even if the
    # schema noticed a wrong field first); else name the field, the value and what is allowed.
    check_syntax(body, encoding)
    try:
        return decode_as(body, encoding, schema)
    except msgspec.ValidationError as exc:
        problem = problem_of(exc, schema, body, encoding)
        raise ApiError(400, problem.message, extra=problem.extra()) from None


def decode_as(body: bytes, encoding: Encoding, schema: type[T]) -> T:
    if encoding == "msgpack":
        return msgspec.msgpack.decode(body, type=schema)
    return msgspec.json.decode(body, type=schema)
