"""The wire of the Python client: FacedError, decoding answers, reading them within limits.

Owns: ``FacedError`` (every failure of the client), decoding into faced's schema types
(``ViewerMessage``, the tracking socket's two kinds of message), the daemon's refusals as
errors, and the client's limits. Does not own the requests or the streams
(faced.client.face_client, faced.client.agent) or the types (faced.schemas). Why apart: the
client and its agent socket share it, and it imports nothing of the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, Literal, TypeVar

import aiohttp
import msgspec

from faced.schemas.face_state import OutgoingMessage
from faced.schemas.person import PersonEvent
from faced.schemas.presets import ConfigMessage
from faced.schemas.tracking import PresenceMessage, TrackingResult

T = TypeVar("T")
Encoding = Literal["json", "msgpack"]

ViewerMessage = OutgoingMessage | ConfigMessage | PresenceMessage
"""What a viewer socket carries: the Open Face messages, the face pack, presence."""
"""What ``/ws/viewer`` sends (and ``/api/events`` carries)."""

MSGPACK: Final = "application/msgpack"
MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
"""An answer larger than this is refused rather than held (an analysis with landmarks of
eight faces is well under 1 MiB)."""
MAX_EVENT_BYTES: Final = 64 * 1024
"""One Server-Sent Event's data, at most."""
MAX_SOCKET_MESSAGE_BYTES: Final = 4 * 1024 * 1024
"""One socket message, at most (a viewer's audio chunk is up to ~1.4 MB of base64)."""


class FacedError(Exception):
    """Any failure of a call: the daemon's refusal or no answer at all.

    ``status`` is the HTTP status (400, 401, 403, 404, 413, 429, 503, …), or None when no
    HTTP answer came (connection refused, timed out, the connection lost, an answer that
    is not faced's). ``message`` is the daemon's ``{"error": …}`` sentence when it sent
    one; ``details`` the whole error body (``field``, ``allowed``, ``retry_after_s``, …).
    """

    def __init__(
        self, status: int | None, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status}: {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class Undecodable(FacedError):
    """The daemon sent something this client cannot read: retrying will not help."""


_DECODERS: dict[Any, tuple[msgspec.json.Decoder[Any], msgspec.msgpack.Decoder[Any]]] = {}


def decode(data: bytes | str, schema: Any, encoding: Encoding) -> Any:
    """``data`` as ``schema`` (a type or a union); Undecodable if it is not one."""
    decoders = _DECODERS.get(schema)
    if decoders is None:
        decoders = _DECODERS[schema] = (
            msgspec.json.Decoder(schema),
            msgspec.msgpack.Decoder(schema),
        )
    try:
        if encoding == "msgpack":
            return decoders[1].decode(data.encode() if isinstance(data, str) else data)
        return decoders[0].decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        name = getattr(schema, "__name__", str(schema))
        raise Undecodable(None, f"the daemon's answer is not a {name}: {exc}") from None


def _wire_name(name: str) -> str:
    """A Python field name as the Open Face wire spells it (``look_at`` -> ``lookAt``);
    names already in camelCase pass unchanged."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {_wire_name(name): value for name, value in fields.items()}


def connection_error(exc: BaseException, what: str) -> FacedError:
    """No HTTP answer: why, in one sentence."""
    if isinstance(exc, TimeoutError):
        return FacedError(None, f"{what}: timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        reason = os.strerror(error.errno) if error.errno else str(error.strerror or error)
        return FacedError(None, f"{what}: cannot connect ({reason})")
    return FacedError(None, f"{what}: {type(exc).__name__}: {exc}".rstrip(": "))


class _Typed(msgspec.Struct):
    type: str | None = None


_VIEWER_TYPES: Final = frozenset(
    msgspec.inspect.type_info(t).tag  # type: ignore[attr-defined]
    for t in ViewerMessage.__args__
)


def decode_viewer(data: bytes | str, encoding: Encoding) -> ViewerMessage | None:
    """A viewer message; None for a type this client does not know (a newer daemon's)."""
    try:
        message: ViewerMessage = decode(data, ViewerMessage, encoding)
        return message
    except Undecodable:
        if decode(data, _Typed, encoding).type in _VIEWER_TYPES:
            raise
        return None


_STREAM_FIELDS: Final = frozenset({"frame", "ts", "fps", "latency_ms", "face_found"})

TrimmedTrackingResult: Final = msgspec.defstruct(
    "TrimmedTrackingResult",
    [
        (field.name, field.type | None, None)
        for field in msgspec.structs.fields(TrackingResult)
        if field.name not in _STREAM_FIELDS
    ],
    bases=(TrackingResult,),
    kw_only=True,
)
"""A ``TrackingResult`` of ``/ws/tracking?fields=…``: the fields left out are None.
Derived from TrackingResult (and an instance of it), not declared again."""


def decode_tracking(
    data: bytes | str, encoding: Encoding, *, trimmed: bool = False
) -> TrackingResult | PersonEvent:
    """``/ws/tracking`` carries untagged results and (with ``?events=1``) tagged person
    events: msgspec cannot decode that union in one pass, so read ``type`` first."""
    if decode(data, _Typed, encoding).type == "person":
        event: PersonEvent = decode(data, PersonEvent, encoding)
        return event
    result: TrackingResult = decode(
        data, TrimmedTrackingResult if trimmed else TrackingResult, encoding
    )
    return result


async def read_body(response: aiohttp.ClientResponse, limit: int | None = None) -> bytes:
    """The whole answer, refused past ``limit`` (``MAX_RESPONSE_BYTES``) instead of held."""
    limit = MAX_RESPONSE_BYTES if limit is None else limit
    length = response.content_length
    if length is not None and length > limit:
        raise FacedError(None, f"the answer is too large: {length} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise FacedError(None, f"the answer is too large: over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def encoding_of(response: aiohttp.ClientResponse) -> Encoding:
    return "msgpack" if response.content_type in (MSGPACK, "application/x-msgpack") else "json"


def error_of(response: aiohttp.ClientResponse, payload: bytes) -> FacedError:
    """The daemon's refusal as a FacedError: its status and its ``{"error": …}``."""
    try:
        if encoding_of(response) == "msgpack":
            body = msgspec.msgpack.decode(payload)
        else:
            body = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return FacedError(response.status, body["error"], body)
    text = payload[:200].decode(errors="replace").strip() or response.reason or "no message"
    return FacedError(response.status, text)
