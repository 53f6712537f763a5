"""Schemathesis hooks for the API fuzz run (loaded by the ``st`` child through
SCHEMATHESIS_HOOKS): msgpack, the daemon's second encoding, on the way out and back, so the
fuzzer sends msgpack bodies and validates msgpack answers against the same schemas as JSON."""

from __future__ import annotations

from typing import Any

import msgspec
import schemathesis


@schemathesis.serializer("application/msgpack")
def to_msgpack(ctx: Any, value: Any) -> bytes:
    data = getattr(value, "data", value)  # schemathesis' Binary wraps raw bytes
    return data if isinstance(data, bytes) else msgspec.msgpack.encode(data)


@schemathesis.deserializer("application/msgpack")
def from_msgpack(ctx: Any, response: Any) -> Any:
    return msgspec.msgpack.decode(response.content)
