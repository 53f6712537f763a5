"""The display's schemas: GET/PUT /api/display.

Owns: the types. ``DisplayUpdate`` is what a client may change; ``DisplayStatus`` what the
display is doing and why. Does not own: what fills them (faced.display_policy,
faced.devices.display) or the routes (faced.api.display). Why apart: the same types
validate, encode and give the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

Percent = Annotated[int, Meta(ge=0, le=100)]
Level = Literal["on", "dim", "off"]
Driver = Literal["sysfs", "wayland", "wlr-randr", "vcgencmd", "none"]


class DisplayUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    power: bool | UnsetType = UNSET
    """true: on, false: off."""
    brightness: Percent | UnsetType = UNSET
    """Backlight brightness in percent (needs a backlight)."""


DisplayChange = Annotated[DisplayUpdate, Meta(extra_json_schema={"minProperties": 1})]
"""PUT /api/display's body: a ``DisplayUpdate`` naming at least one field (an empty one is
400 "nothing to change")."""


class DisplayStatus(msgspec.Struct, kw_only=True):
    driver: Driver
    """The back end in use (display.driver, auto resolved at startup)."""
    power: bool | None
    """Whether the display is on (None: not known yet)."""
    brightness: Percent | None
    """Brightness in percent (None: unknown, or no backlight)."""
    brightness_control: bool
    """Whether brightness can be set (a backlight, or the none driver)."""
    policy: Level | None
    """What presence and agent activity call for now (None: display.policy is false)."""
    manual: bool
    """A PUT /api/display holds until the policy's level next changes."""
    error: str | None = None
    """The last failure of the device or tool, until an operation succeeds."""
