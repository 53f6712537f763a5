"""Gaze follow and mirror: the mode and its API messages (GET/PUT /api/follow).

Owns: the types. ``FollowStatus`` is what GET /api/follow answers; ``FollowUpdate`` is the
body of PUT /api/follow (every field optional, unknown fields refused). Does not own: the
mode's meaning (faced.face.follow), the component (faced.gaze_follow) or the routes
(faced.api.follow). Why apart: the follower, the routes and the OpenAPI document share them.
"""

from __future__ import annotations

import typing
from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

FollowMode = Literal["off", "follow", "mirror"]
FOLLOW_MODES: Final[tuple[str, ...]] = typing.get_args(FollowMode)

HoldSeconds = Annotated[
    float,
    Meta(
        ge=0,
        le=3600,
        description="Seconds an agent's update wins over the camera for the fields it set",
    ),
]


class FollowStatus(msgspec.Struct, kw_only=True):
    mode: FollowMode
    """off: the camera changes nothing; follow: the eyes look at the person (lookAt);
    mirror: follow, and the face copies the person's blinks, jaw, smile and brows."""
    hold_s: float
    """How long an agent's lookAt or state wins over the camera after the agent sent it."""
    tracking: bool
    """Live tracking runs (a camera with camera.tracking); without it no mode does anything."""
    holding: list[Literal["gaze", "expression", "winks", "mouth"]]
    """Field groups an agent set within the last hold_s, which the camera leaves alone now."""


class FollowUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """PUT /api/follow: change the mode and/or the hold time (until restart; the config
    file's ``[follow]`` section sets them at start)."""

    mode: FollowMode | UnsetType = UNSET
    hold_s: HoldSeconds | UnsetType = UNSET


__all__ = ["FOLLOW_MODES", "FollowMode", "FollowStatus", "FollowUpdate"]
