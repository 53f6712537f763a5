"""What faced perceives of the person in front of it: the summary and its events.

Owns: the types an agent reads — ``PersonSummary`` (``GET /api/person``) and
``PersonEvent`` (``GET /api/person/events``, ``/ws/tracking?events=1``, the MCP server, the
Python client). Does not own: computing them (faced.perception) or serving them
(faced.api.person). Why apart: the daemon, the client, the MCP server and the OpenAPI
document encode and decode the same types.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

from faced.schemas.tracking import Position

Expression = Literal["neutral", "happy", "surprised", "sad", "angry", "disgusted"]
"""A coarse label from the blendshapes (docs/api.md says how coarse)."""

PersonChangeKind = Literal[
    "arrived",
    "left",
    "attention_start",
    "attention_end",
    "speaking_start",
    "speaking_end",
    "expression",
]
"""What the summary's changes are called: the events perception makes (and the history
keeps)."""
PersonEventKind = Literal[PersonChangeKind, "snapshot"]
"""The changes, and ``snapshot``: the summary as it stood when a client joined the event
stream (``/api/person/events?snapshot=1`` only; never in the history or /ws/tracking)."""
PERSON_CHANGE_KINDS: tuple[PersonChangeKind, ...] = get_args(PersonChangeKind)
PERSON_EVENT_KINDS: tuple[PersonEventKind, ...] = (*PERSON_CHANGE_KINDS, "snapshot")


class PersonSummary(msgspec.Struct, kw_only=True):
    """The primary person now (the largest face), and how many faces are in view."""

    present: bool
    """Someone is in front of the box (debounced, as the viewers' presence)."""
    people: int
    """Faces in view on the latest frame (up to ``vision.num_faces``)."""
    ts: int
    """The frame's capture time, milliseconds since the Unix epoch."""
    distance_m: float | None = None
    """From the camera, in metres: from the iris size, else the eyes' distance apart."""
    attention: bool = False
    """Looking at the screen (head and gaze toward the camera, debounced)."""
    speaking: bool = False
    """The mouth moves as in speech (visual only: it does not hear)."""
    expression: Expression | None = None
    expression_score: float | None = None
    """0..1: how clearly the blendshapes show ``expression``."""
    smile: float | None = None
    """0..1: the mean of mouthSmileLeft and mouthSmileRight."""
    position: Position | None = None
    present_since: int | None = None
    """When each state began (ms since the Unix epoch); None while it does not hold."""
    attention_since: int | None = None
    speaking_since: int | None = None
    expression_since: int | None = None


class PersonEvent(PersonSummary, kw_only=True, tag_field="type", tag="person"):
    """A change of the summary: who arrived or left, attention, speech, expression."""

    event: PersonEventKind


__all__ = [
    "PERSON_CHANGE_KINDS",
    "PERSON_EVENT_KINDS",
    "Expression",
    "PersonChangeKind",
    "PersonEvent",
    "PersonEventKind",
    "PersonSummary",
]
