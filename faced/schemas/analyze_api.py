"""Requests and socket messages of the analyze API (/v1/analyze, /v1/stream).

Owns: the requests and the stream's messages. Does not own: the routes (faced.api.analyze,
faced.api.analyze_stream). The result itself is ``faced.schemas.analysis.Analysis``,
the same document ``faced analyze --jsonl`` writes; these types wrap the requests around it
and the stream's replies. They drive validation, JSON, msgpack and the OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

from faced.schemas.analysis import Analysis

NumFaces = Annotated[int, Meta(ge=1, le=8)]
FrameId = str | int


BASE64_IMAGE: Final = (
    r"^(data:[^,]*;base64,)?(?:[A-Za-z0-9+/]{4})*"
    r"(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$"
)
"""Non-empty, padded, strict base64 (what faced.api.analyze.from_base64 accepts), perhaps a
data: URL; in the document only, so a mistake keeps the handler's wording (empty, not
base64)."""


class Base64Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """POST /v1/analyze/base64."""

    image_base64: Annotated[str, Meta(extra_json_schema={"minLength": 1, "pattern": BASE64_IMAGE})]
    """The encoded image (JPEG, PNG or WebP) as base64, or a data: URL."""
    landmarks: bool = False
    """Include the 478 landmarks of each face."""
    num_faces: NumFaces | None = None
    """Faces to look for, 1-8 (default: vision.num_faces)."""
    blendshapes: bool = True
    """false: the blendshape model is not run (faces carry no blendshapes)."""


class StreamHello(msgspec.Struct, kw_only=True):
    """An optional first /v1/stream message (Eyeconic's handshake)."""

    token: str | None = None
    """The API key, when it was not sent as a header or query parameter."""
    fps: float | None = None
    """The rate the client intends to send at (informational)."""


class StreamFrame(msgspec.Struct, kw_only=True):
    """A /v1/stream text (JSON) or msgpack message carrying a frame."""

    image_base64: str | None = None
    """The encoded frame as base64 or a data: URL (JSON messages)."""
    image: bytes | None = None
    """The encoded frame as raw bytes (msgpack messages only)."""
    id: FrameId | None = None
    """The client's frame id, echoed in the reply."""
    landmarks: bool = False


class StreamReady(msgspec.Struct, kw_only=True, tag_field="type", tag="ready"):
    """Reply to the handshake."""

    workers: int


class StreamResult(Analysis, kw_only=True, tag_field="type", tag="result"):
    """One analyzed frame of /v1/stream: the analysis plus the stream's bookkeeping."""

    id: FrameId
    """The client's frame id, or the server's frame counter when it sent none."""
    frame: int
    """Frames analyzed on this connection so far, this one included."""
    latency_ms: float
    """Receipt of the frame -> reply, on the server."""
    skipped: int
    """Frames dropped since the previous reply because newer ones arrived (latest wins)."""


class StreamError(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="error"):
    """A frame or message the server could not use; the stream goes on (unless closing)."""

    error: str
    id: FrameId | None = None


__all__ = [
    "Base64Request",
    "FrameId",
    "StreamError",
    "StreamFrame",
    "StreamHello",
    "StreamReady",
    "StreamResult",
]
