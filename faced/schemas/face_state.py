"""The Open Face v1 messages: the face state, its partial updates, and what sockets carry.

Owns: the protocol's types and their ranges. Does not own: applying updates
(faced.face.model) or carrying them (faced.openface, faced.api). Why apart: every range and
choice is declared here once, in the field's type: the enums as ``Literal``s, the numeric
ranges of what the face holds as JSON-schema ``minimum``/``maximum`` (the state the server
sends never leaves them), and on the update types as ``x-clamped`` (not ``Meta(ge/le)`` nor
``minimum``/``maximum``: the protocol clamps an out-of-range number instead of rejecting
it, and the document must not promise a refusal it does not make). From these declarations
come decoding (msgspec), the clamping table (``CLAMPS``), the error wording
(``describe_problem``) and the JSON schema / OpenAPI document (``msgspec.json.schema``).

Field names on the wire are camelCase (``rename="camel"``): ``emotion_secondary`` in
Python is ``emotionSecondary`` in JSON and msgpack.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

StateName = Literal[
    "idle",
    "thinking",
    "speaking",
    "listening",
    "reacting",
    "puzzled",
    "alert",
    "working",
    "sleeping",
    "waiting",
    "loading",
]
Emotion = Literal[
    "neutral",
    "happy",
    "sad",
    "confused",
    "excited",
    "concerned",
    "surprised",
    "playful",
    "frustrated",
    "skeptical",
    "determined",
    "embarrassed",
    "proud",
]
STATES: Final[tuple[str, ...]] = typing.get_args(StateName)
EMOTIONS: Final[tuple[str, ...]] = typing.get_args(Emotion)

CLAMPED: Final = "x-clamped"
"""The JSON-schema keyword of a clamped input: ``{"minimum": low, "maximum": high}``."""


def _clamped(low: float, high: float, description: str) -> Meta:
    return Meta(
        extra_json_schema={CLAMPED: {"minimum": low, "maximum": high}},
        description=f"{description}; any number is accepted and clamped to {low}..{high}",
    )


def _ranged(low: float, high: float, description: str) -> Meta:
    return Meta(extra_json_schema={"minimum": low, "maximum": high}, description=description)


# What the face holds (and the server sends): always within the range.
Unit = Annotated[float, _ranged(0, 1, "0 to 1")]
Signed = Annotated[float, _ranged(-1, 1, "-1 to 1")]
TextDurationMs = Annotated[
    int, _ranged(500, 30000, "How long the viewer shows `text`, in milliseconds")
]
# What a client may send: any number, clamped (Open Face's behaviour).
UnitInput = Annotated[float, _clamped(0, 1, "0 to 1")]
SignedInput = Annotated[float, _clamped(-1, 1, "-1 to 1")]
# Any number (then clamped and rounded); always an integer on output.
TextDurationInput = Annotated[
    int | float,
    _clamped(500, 30000, "How long the viewer shows `text`, in milliseconds"),
]
Color = Annotated[str, Meta(pattern="^#[0-9a-fA-F]{6}$", description='a colour "#RRGGBB"')]

DEFAULT_TEXT_DURATION_MS: Final = 3000


class _Message(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of the protocol types: camelCase on the wire."""


class LookAt(_Message, kw_only=True):
    x: Signed = 0.0
    y: Signed = 0.0


class FaceState(_Message, kw_only=True):
    """The whole face state, as GET /api/state returns it (no internal fields)."""

    state: StateName = "idle"
    amplitude: Unit = 0.0
    emotion: Emotion = "neutral"
    emotion_secondary: Emotion = "neutral"
    emotion_blend: Unit = 0.0
    intensity: Unit = 1.0
    progress: Unit | None = None
    look_at: LookAt = msgspec.field(default_factory=LookAt)
    color: Color | None = None
    text: str | None = None
    text_duration: TextDurationMs = DEFAULT_TEXT_DURATION_MS
    detail: str | None = None
    wink_left: Unit = 0.0
    wink_right: Unit = 0.0


class LookAtUpdate(_Message, kw_only=True):
    x: SignedInput | UnsetType = UNSET
    y: SignedInput | UnsetType = UNSET


class StateUpdate(_Message, kw_only=True):
    """A partial state update (POST /api/state, agent sockets). Absent fields keep their
    value; an explicit null clears a nullable field; unknown fields are ignored.

    ``type`` is optional: ``"reset"`` returns to the default state, ``"ping"`` (sockets)
    asks for a pong; anything else is a state update.
    """

    type: str | UnsetType = UNSET
    state: StateName | UnsetType = UNSET
    amplitude: UnitInput | UnsetType = UNSET
    emotion: Emotion | UnsetType = UNSET
    emotion_secondary: Emotion | UnsetType = UNSET
    emotion_blend: UnitInput | UnsetType = UNSET
    intensity: UnitInput | UnsetType = UNSET
    progress: UnitInput | UnsetType | None = UNSET
    look_at: LookAtUpdate | UnsetType = UNSET
    color: Color | UnsetType | None = UNSET
    text: str | UnsetType | None = UNSET
    text_duration: TextDurationInput | UnsetType = UNSET
    detail: str | UnsetType | None = UNSET
    wink_left: UnitInput | UnsetType = UNSET
    wink_right: UnitInput | UnsetType = UNSET


class SpeakRequest(StateUpdate, kw_only=True):
    """POST /api/speak: a state update (``state`` defaults to speaking) that also starts a
    new audio sequence. ``expectAudio: false`` tells viewers no audio will follow."""

    expect_audio: bool = True


BASE64: Final = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$"
"""Non-empty, padded base64: what msgspec decodes into ``bytes`` (for the document; msgspec
checks it itself)."""


class AudioRequest(_Message, kw_only=True):
    """POST /api/audio as JSON or msgpack: base64 WAV (msgpack may send raw bytes)."""

    data: Annotated[bytes, Meta(min_length=1, extra_json_schema={"pattern": BASE64})]
    seq: int | UnsetType = UNSET


class AudioDoneRequest(_Message, kw_only=True):
    seq: int | UnsetType = UNSET


# ASCII white space only: Python's \s and JSON Schema's (ECMA 262) differ beyond it.
_NOT_BLANK: Final = r"[^ \t\n\r\f\v]"


class ChatRequest(_Message, kw_only=True):
    message: Annotated[
        str, Meta(min_length=1, pattern=_NOT_BLANK, description="a non-blank string")
    ]
    """Not blank; at most limits.chat_max_chars characters (413 beyond)."""


# --- history ----------------------------------------------------------------------------


class _HistoryEntry(_Message, kw_only=True, tag_field="type"):
    ts: int
    """Milliseconds since the Unix epoch."""


class StateChange(_Message, kw_only=True):
    state: StateName
    prev: StateName
    emotion: Emotion


class TextShown(_Message, kw_only=True):
    text: str
    state: StateName
    emotion: Emotion


class DetailShown(_Message, kw_only=True):
    detail: str


class StateEntry(_HistoryEntry, kw_only=True, tag="state"):
    data: StateChange


class TextEntry(_HistoryEntry, kw_only=True, tag="text"):
    data: TextShown


class DetailEntry(_HistoryEntry, kw_only=True, tag="detail"):
    data: DetailShown


PersonSeenEvent = Literal[
    "arrived", "left", "attention_start", "attention_end", "speaking_start", "speaking_end"
]
PRESENCE_EVENTS: Final = frozenset({"arrived", "left"})
"""The person entries anyone may read; the others are camera-derived (the key's)."""


class PersonSeen(_Message, kw_only=True):
    """Someone arrived in front of the camera or left (faced.live's presence); for callers
    that may see camera-derived data also when they looked at the screen or spoke
    (faced.perception), never face data."""

    event: PersonSeenEvent
    duration: float | None = None
    """Seconds: how long the person stayed (left) or nobody was there (arrived); how long
    they attended (attention_end) or spoke (speaking_end)."""


class PersonEntry(_HistoryEntry, kw_only=True, tag="person"):
    data: PersonSeen


HistoryEntry = StateEntry | TextEntry | DetailEntry | PersonEntry


# --- responses --------------------------------------------------------------------------


class StateResponse(_Message, kw_only=True):
    ok: bool = True
    state: FaceState


class SpeakResponse(_Message, kw_only=True):
    ok: bool = True
    seq: int
    state: FaceState


class AudioResponse(_Message, kw_only=True):
    ok: bool = True
    seq: int


class HistoryResponse(_Message, kw_only=True):
    entries: list[HistoryEntry]
    count: int


# --- what viewers (sockets and /api/events) receive -------------------------------------


class StateMessage(FaceState, kw_only=True, tag_field="type", tag="state"):
    pass


class HistoryMessage(_Message, kw_only=True, tag_field="type", tag="history"):
    entries: list[HistoryEntry]


class AudioMessage(_Message, kw_only=True, tag_field="type", tag="audio"):
    data: str
    """Base64 of the audio file."""
    format: Literal["wav"] = "wav"
    seq: int


class AudioSeqMessage(_Message, kw_only=True, tag_field="type", tag="audio-seq"):
    seq: int
    expect_audio: bool = True


class AudioDoneMessage(_Message, kw_only=True, tag_field="type", tag="audio-done"):
    seq: int


class PongMessage(_Message, kw_only=True, tag_field="type", tag="pong"):
    pass


class ErrorMessage(_Message, kw_only=True, tag_field="type", tag="error", omit_defaults=True):
    message: str
    field: str | None = None
    allowed: list[str] | None = None
    expected: str | None = None


OutgoingMessage = (
    StateMessage
    | HistoryMessage
    | AudioMessage
    | AudioSeqMessage
    | AudioDoneMessage
    | PongMessage
    | ErrorMessage
)


# --- derived from the declarations above ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clamp:
    low: float
    high: float
    integer: bool


def _clamps(struct: type[msgspec.Struct]) -> dict[str, Clamp]:
    """Field name -> range, read from each field's ``x-clamped``."""
    table: dict[str, Clamp] = {}
    for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
        node = field.type
        if isinstance(node, msgspec.inspect.UnionType):  # `Unit | None`: the range is on Unit
            node = next(
                (t for t in node.types if not isinstance(t, msgspec.inspect.NoneType)), node
            )
        if isinstance(node, msgspec.inspect.Metadata):
            extra = (node.extra_json_schema or {}).get(CLAMPED, {})
            if "minimum" in extra and "maximum" in extra:
                integer = isinstance(node.type, msgspec.inspect.IntType) or (
                    isinstance(node.type, msgspec.inspect.UnionType)
                    and any(isinstance(t, msgspec.inspect.IntType) for t in node.type.types)
                )
                table[field.name] = Clamp(float(extra["minimum"]), float(extra["maximum"]), integer)
    return table


CLAMPS: Final[Mapping[str, Clamp]] = _clamps(StateUpdate)
"""Python field name of StateUpdate -> its clamping range."""
LOOK_AT_CLAMPS: Final[Mapping[str, Clamp]] = _clamps(LookAtUpdate)


# --- turning a validation error into a sentence -------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """A client's mistake in a message, worded for people and for programs."""

    message: str
    field: str | None = None
    allowed: tuple[str, ...] | None = None
    expected: str | None = None

    def extra(self) -> dict[str, object]:
        extra: dict[str, object] = {}
        if self.field is not None:
            extra["field"] = self.field
        if self.allowed is not None:
            extra["allowed"] = list(self.allowed)
        if self.expected is not None:
            extra["expected"] = self.expected
        return extra


_AT_RE: Final = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_MISSING_RE: Final = re.compile(r"Object missing required field `([^`]+)`")
_UNKNOWN_RE: Final = re.compile(r"Object contains unknown field `([^`]+)`")


def _schema_for(schema: Mapping[str, Any], path: list[str]) -> Mapping[str, Any] | None:
    defs = schema.get("$defs", {})
    node: Mapping[str, Any] | None = schema

    def resolve(n: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = n.get("$ref")
        return defs[ref.rsplit("/", 1)[-1]] if isinstance(ref, str) else n

    for part in path:
        if node is None:
            return None
        node = resolve(node)
        if "anyOf" in node:
            node = next((resolve(o) for o in node["anyOf"] if "properties" in resolve(o)), node)
        node = node.get("properties", {}).get(part)
    return resolve(node) if node is not None else None


def _describe(node: Mapping[str, Any]) -> str:
    """A JSON-schema fragment in words: 'a number from 0 to 1, or null'."""
    clamped = node.get(CLAMPED)
    if clamped is not None:  # any number, clamped: still worded by its range
        node = {k: v for k, v in node.items() if k != CLAMPED} | clamped
    options = node.get("anyOf", [node])
    words: list[str] = []
    for option in options:
        kind = option.get("type")
        if "enum" in option:
            words.append("one of " + ", ".join(str(v) for v in option["enum"]))
        elif kind in ("number", "integer") or (
            "minimum" in option and kind is None and "anyOf" not in option
        ):
            low, high = option.get("minimum"), option.get("maximum")
            word = "a whole number" if kind == "integer" else "a number"
            words.append(f"{word} from {low} to {high}" if low is not None else word)
        elif kind == "string" and option.get("contentEncoding") == "base64":
            words.append("non-empty base64 text" if option.get("minLength") else "base64 text")
        elif kind == "string" and "pattern" in option:
            words.append(option.get("description") or f"a string matching {option['pattern']}")
        elif kind == "null":
            words.append("null")
        elif kind == "object":
            words.append("an object")
        elif kind == "boolean":
            words.append("true or false")
        elif kind is not None:
            words.append(f"a {kind}")
    if "minimum" in node and "anyOf" in node:  # ranges on a union (e.g. int | float)
        words = [f"a number from {node['minimum']} to {node['maximum']}"]
    unique = list(dict.fromkeys(words))
    return ", or ".join(unique) if unique else "a valid value"


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else msgspec.json.encode(value).decode()
    return text if len(text) <= 60 else text[:57] + "…"


_MISSING: Final = object()


def _value_at(document: Any, path: list[str]) -> Any:
    node = document
    for part in path:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


_SCHEMAS: dict[type, Mapping[str, Any]] = {}
_DECLARED_ORDER: Final = {frozenset(STATES): STATES, frozenset(EMOTIONS): EMOTIONS}


def describe_problem(
    error: msgspec.ValidationError, schema_type: type, document: Any = _MISSING
) -> Problem:
    """Word msgspec's error about ``schema_type`` for a client; ``document`` is the message
    decoded without a schema (to quote the offending value), if it could be."""
    schema = _SCHEMAS.get(schema_type)
    if schema is None:
        schema = _SCHEMAS[schema_type] = msgspec.json.schema(schema_type)
    match = _AT_RE.match(str(error))
    assert match is not None  # the pattern matches any string
    what, raw_path = match.group("what"), match.group("path") or ""
    path = [p for p in re.split(r"\.|\[|\]", raw_path) if p]
    missing = _MISSING_RE.match(what)
    if missing:
        name = ".".join([*path, missing.group(1)])
        return Problem(f"missing field '{name}'", field=name)
    unknown = _UNKNOWN_RE.match(what)
    if unknown:  # a schema that forbids unknown fields
        name = ".".join([*path, unknown.group(1)])
        known = tuple((_schema_for(schema, path) or {}).get("properties", {}))
        return Problem(
            f"unknown field '{name}'; allowed: {', '.join(known)}", field=name, allowed=known
        )
    if not path:
        if what.startswith("Expected `object`"):
            return Problem(f"the message must be an object: {what.lower()}")
        return Problem(f"invalid message: {what}")
    name = ".".join(path)
    node = _schema_for(schema, path) or {}
    value = _value_at(document, path)
    shown = f": {_show(value)}" if value is not _MISSING else ""
    if "enum" in node:
        allowed = tuple(str(v) for v in node["enum"])
        allowed = _DECLARED_ORDER.get(frozenset(allowed), allowed)  # the schema sorts them
        return Problem(
            f"invalid value for '{name}'{shown}; allowed: {', '.join(allowed)}",
            field=name,
            allowed=allowed,
        )
    expected = _describe(node)
    if "base64" in what:
        expected = "base64 text"
    return Problem(f"invalid value for '{name}'{shown}; expected {expected}", name, None, expected)
