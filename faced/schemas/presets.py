"""Face packs and the viewer's public config: the schemas of /api/v1/presets and /api/config.

Owns: the types. ``Preset`` is one face pack as GAZE-style clients list it; ``ViewerConfig``
is what every viewer shows (read publicly, written with the API key); ``ConfigMessage`` is
what the viewer socket broadcasts when it changes. Does not own: the packs or the choice
(faced.face_packs), or the routes (faced.api.presets). Why apart: the routes, the hub's
messages and the OpenAPI document share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Slug = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,47}$")]


class Preset(msgspec.Struct, kw_only=True):
    preset_id: int
    """Position in the slug-sorted list, from 1; stable while the installed packs are."""
    slug: Slug
    """The pack's name in URLs and in /api/config (``?face=SLUG``)."""
    name: str
    """Human-readable name, from the pack's ``meta.name``."""
    has_cover: bool
    """True when a cover image is served at /static/faces/SLUG.cover.svg."""


class PresetList(msgspec.Struct, kw_only=True):
    presets: list[Preset]


class ViewerConfig(msgspec.Struct, kw_only=True):
    face: str
    """Slug of the face pack every viewer shows."""


class ViewerConfigUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    face: str
    """Slug of an installed face pack (see GET /api/v1/presets)."""


def viewer_config_update_of(slugs: Sequence[str]) -> type[msgspec.Struct]:
    """``ViewerConfigUpdate`` as the document gives it: ``face`` one of the installed packs
    (known once they are scanned; an unknown one is 400, faced.face_packs)."""
    installed: Any = Literal[tuple(slugs)]  # a Literal built at run time
    face: Any = Annotated[
        installed, Meta(description="Slug of an installed face pack (see GET /api/v1/presets).")
    ]
    return msgspec.defstruct(
        "ViewerConfigUpdate", [("face", face)], kw_only=True, forbid_unknown_fields=True
    )


class ConfigMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="config"):
    """Broadcast to every viewer when the config changes: ``{"type":"config","face":…}``."""

    face: str


__all__ = [
    "ConfigMessage",
    "Preset",
    "PresetList",
    "Slug",
    "ViewerConfig",
    "ViewerConfigUpdate",
    "viewer_config_update_of",
]
