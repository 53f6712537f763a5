"""Schemathesis hooks for the API fuzz run (loaded by the ``st`` child through
SCHEMATHESIS_HOOKS): msgpack, the daemon's second encoding, on the way out and back, so the
fuzzer sends msgpack bodies and validates msgpack answers against the same schemas as JSON."""

from __future__ import annotations

from typing import Any

import msgspec
import schemathesis

MSGPACK_INT_MIN = -(2**63)
MSGPACK_INT_MAX = 2**64 - 1


def _within_msgpack(value: Any) -> Any:
    """``value`` with every integer msgpack cannot carry (beyond 64 bits; JSON can) moved to
    the nearest one it can: no client can send more, and the bounds the document declares
    all lie inside, so a case that was valid (or invalid) for the document stays so."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return min(max(value, MSGPACK_INT_MIN), MSGPACK_INT_MAX)
    if isinstance(value, dict):
        return {key: _within_msgpack(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_within_msgpack(item) for item in value]
    return value


@schemathesis.serializer("application/msgpack")
def to_msgpack(ctx: Any, value: Any) -> bytes:
    data = getattr(value, "data", value)  # schemathesis' Binary wraps raw bytes
    return data if isinstance(data, bytes) else msgspec.msgpack.encode(_within_msgpack(data))


@schemathesis.deserializer("application/msgpack")
def from_msgpack(ctx: Any, response: Any) -> Any:
    return msgspec.msgpack.decode(response.content)
