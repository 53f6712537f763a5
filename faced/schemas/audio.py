"""The speaker's API messages: GET/POST /api/audio/volume.

Owns: the volume's types. ``Volume`` is what the routes answer and what persists in the
state directory (``audio.json``); ``VolumeUpdate`` is the body of POST (either field may
be left out; unknown fields are refused). Does not own: applying or persisting the
volume (faced.voice) or the routes (faced.api.speaker). Why apart: one type validates the
body, encodes the answer, persists the setting and gives the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import UNSET, Meta, UnsetType

Percent = Annotated[int, Meta(ge=0, le=100, description="0 (silent) to 100 (full scale)")]


class Volume(msgspec.Struct, kw_only=True):
    volume: Percent
    """Playback volume; the gain is cubic in it (50 is about -18 dB)."""
    muted: bool
    """True: the speaker plays silence (the mouth still moves with the speech)."""


class VolumeUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    volume: Percent | UnsetType = UNSET
    muted: bool | UnsetType = UNSET


__all__ = ["Percent", "Volume", "VolumeUpdate"]
