"""The system API's messages: /api/about, /api/components, /api/system/config and restart.

Owns: the types those routes read and answer (the OpenAPI document is made from them).
Does not own: what fills them (faced.system_info, faced.components, faced.settings) or the
routes (faced.api.system). Why apart: one type validates a body, encodes an answer and
documents both.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from faced.schemas.health import ModelHealth


class About(msgspec.Struct, kw_only=True):
    """What this box is and runs: no secrets, no settings."""

    version: str
    uptime_s: float
    started_at: str
    """When this process started serving (UTC, ISO 8601)."""
    pid: int
    hostname: str
    platform: str
    """The operating system and kernel (Python's platform.platform())."""
    machine: str
    """The CPU architecture (aarch64, x86_64, …)."""
    os: str | None
    """PRETTY_NAME of /etc/os-release where there is one."""
    board: str | None
    """The device tree's model (e.g. "Raspberry Pi 5 Model B Rev 1.0", a Jetson module);
    None on a machine without a device tree (a PC)."""
    python: str
    backend: str
    """The inference back end (vision.backend) and its precision, e.g. litert/fp32."""
    model: ModelHealth | None
    """The face models the analyze workers run, once loaded."""
    cpu_temperature_c: float | None
    """The CPU's temperature where the kernel reports one (thermal zones)."""


ComponentName = Literal[
    "camera",
    "tracking",
    "perception",
    "follow",
    "speaker",
    "display",
    "mqtt",
    "mdns",
    "metrics",
    "analyze",
]


class Component(msgspec.Struct, kw_only=True):
    name: str
    enabled: bool
    status: str
    """ok, error (the daemon is degraded), off, or the component's own word."""
    toggle: bool
    """True: POST /api/components/{name} switches it at run time."""
    error: str | None = None
    """The last error it reported, while it is failing."""
    figures: dict[str, Any] = msgspec.field(default_factory=dict)
    """Its key figures: what it says of itself in /health besides status and error."""


class Components(msgspec.Struct, kw_only=True):
    components: list[Component]


class ComponentToggle(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool


class ConfigReport(msgspec.Struct, kw_only=True):
    config: dict[str, Any]
    """The effective configuration, the persisted layer included; secrets masked."""
    persisted: dict[str, Any]
    """The layer the system API keeps in the state directory (secrets masked)."""
    restart_required: list[str]
    """Keys whose value differs from what the running daemon was started with and that
    only a restart applies."""
    applied: list[str] = msgspec.field(default_factory=list)
    """PATCH: the keys applied live by this change."""


class RestartRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    confirm: bool = False


class Restarting(msgspec.Struct, kw_only=True):
    restarting: bool
    how: Literal["systemd", "exec"]
    """systemd: the process exits and the service manager starts it again (Restart=);
    exec: the process replaces itself with the same command line."""


__all__ = [
    "About",
    "Component",
    "ComponentName",
    "ComponentToggle",
    "Components",
    "ConfigReport",
    "RestartRequest",
    "Restarting",
]
