"""The body of ``GET /health`` (and its alias ``/api/health``).

Owns: the report's shape. faced.api.health builds it from its registry: the core's fields,
one entry per component under ``components``, and the facts components add with a summary
(viewers, agents, the face state, the model). Components' entries are open: each says at
least its ``status``. Does not own: the registry or the route (faced.api.health). Why apart:
the OpenAPI document and the tests decode /health with this type.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class ComponentHealth(msgspec.Struct, forbid_unknown_fields=False):
    """One component's entry; the other fields are the component's own."""

    status: str
    """"ok", "error" (the daemon is degraded), "off", or the component's own word."""


class ModelFile(msgspec.Struct, forbid_unknown_fields=True):
    sha256: str
    runs_on: str


class ModelHealth(msgspec.Struct, forbid_unknown_fields=True):
    """The face models the analyze workers run."""

    name: str
    version: str
    sha256: str
    backend: str
    precision: str
    files: dict[str, ModelFile]


class BlendshapesHealth(msgspec.Struct, forbid_unknown_fields=True):
    """Whether live tracking runs the blendshape model (only while someone needs it)."""

    running: bool
    consumers: list[str]
    """Who needs them now: "tracking socket", "emotion_state", "mirror", "person events",
    …; empty: the model is not run."""


class Health(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The daemon's health: the process answers (``ok``); ``status`` says whether every
    component does."""

    status: Literal["ok", "degraded"]
    ok: bool
    version: str
    uptime_s: float
    components: dict[str, ComponentHealth]
    viewers: int | msgspec.UnsetType = msgspec.UNSET
    agents: int | msgspec.UnsetType = msgspec.UNSET
    state: str | msgspec.UnsetType = msgspec.UNSET
    """The face's state (idle, listening, …)."""
    slow_viewers_disconnected: int | msgspec.UnsetType = msgspec.UNSET
    model: ModelHealth | msgspec.UnsetType = msgspec.UNSET
    blendshapes: BlendshapesHealth | msgspec.UnsetType = msgspec.UNSET
    """Live tracking's blendshape model (present while live tracking runs)."""


__all__ = ["BlendshapesHealth", "ComponentHealth", "Health", "ModelFile", "ModelHealth"]
