"""The entities a box shows Home Assistant, their topics, and their discovery configs.

Owns: the table of entities (``ENTITIES``: component, name, discovery options, whether it
has a state and takes commands), the topics (``Topics``: availability, states, commands,
the group's commands, discovery configs) and the discovery payloads (``config_of``): one
``device`` block, ``unique_id`` and ``default_entity_id`` on every entity (the payload key
``object_id`` is deprecated since Home Assistant 2025.10), availability through the box's
last will. Does not own: reading states or running commands (faced.mqtt.link,
faced.mqtt.commands) or the connection. Why apart: pure data, tested against Home
Assistant's rules without a broker.

Privacy: only presence-level facts leave the box (present, how many people, how far,
attending, speaking); never images, landmarks, blendshapes or the person's expression.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Any, Final

from faced import __version__
from faced.config import Config
from faced.schemas.face_state import EMOTIONS, STATES

AVAILABLE: Final = "online"
NOT_AVAILABLE: Final = "offline"
HA_STATUS_TOPIC: Final = "status"
"""Under the discovery prefix: Home Assistant's birth (online) and last will (offline)."""
ON: Final = "ON"
OFF: Final = "OFF"
UNKNOWN: Final = "None"
"""A sensor's payload for "unknown" in Home Assistant (no distance without a face)."""
SAY_MAX_CHARS: Final = 255
"""Home Assistant's text entity allows at most 255 characters."""


@dataclass(frozen=True)
class Entity:
    """One Home Assistant entity of the box: ``key`` is its object id and topic level."""

    key: str
    component: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    state: bool = True
    command: bool = False


def _binary(key: str, name: str, **options: Any) -> Entity:
    return Entity(key, "binary_sensor", name, options)


def _diagnostic(key: str, name: str, **options: Any) -> Entity:
    return Entity(key, "sensor", name, {"entity_category": "diagnostic", **options})


ENTITIES: Final[tuple[Entity, ...]] = (
    _binary("presence", "Presence", device_class="occupancy"),
    Entity("people", "sensor", "People", {"state_class": "measurement", "icon": "mdi:account"}),
    Entity(
        "distance",
        "sensor",
        "Distance",
        {
            "device_class": "distance",
            "unit_of_measurement": "m",
            "state_class": "measurement",
            "suggested_display_precision": 2,
        },
    ),
    _binary("attention", "Attention", icon="mdi:eye"),
    _binary("speaking", "Speaking", icon="mdi:account-voice"),
    Entity("state", "select", "Face state", {"options": list(STATES)}, command=True),
    Entity("emotion", "select", "Emotion", {"options": list(EMOTIONS)}, command=True),
    Entity("face", "select", "Face pack", {"icon": "mdi:face-man-shimmer"}, command=True),
    Entity(
        "say",
        "text",
        "Say",
        {"min": 0, "max": SAY_MAX_CHARS, "mode": "text", "icon": "mdi:message-text"},
        state=False,
        command=True,
    ),
    Entity("reset", "button", "Reset face", {"icon": "mdi:restore"}, state=False, command=True),
    Entity("display", "switch", "Display", {"icon": "mdi:monitor"}, command=True),
    Entity(
        "brightness",
        "number",
        "Brightness",
        {"min": 0, "max": 100, "step": 1, "unit_of_measurement": "%", "mode": "slider"},
        command=True,
    ),
    Entity(
        "volume",
        "number",
        "Volume",
        {"min": 0, "max": 100, "step": 1, "unit_of_measurement": "%", "mode": "slider"},
        command=True,
    ),
    _diagnostic("fps", "Camera fps", unit_of_measurement="fps", state_class="measurement"),
    _diagnostic("health", "Health", icon="mdi:heart-pulse"),
)
BY_KEY: Final = {entity.key: entity for entity in ENTITIES}
COMMANDS: Final = frozenset(entity.key for entity in ENTITIES if entity.command)

_NOT_ID = re.compile(r"[^a-z0-9_-]+")
_ENTITY_SLUG = re.compile(r"[^a-z0-9_]")  # Home Assistant's entity ids


def sanitise(name: str) -> str:
    """A host name as a node id: lower case, ``[a-z0-9_-]`` only, at most 64 characters."""
    node = _NOT_ID.sub("_", name.split(".", maxsplit=1)[0].lower()).strip("_")[:64]
    return node or "faced"


@dataclass(frozen=True)
class Topics:
    """Every topic of one box."""

    node_id: str
    base: str
    group: str
    prefix: str

    @classmethod
    def from_config(cls, config: Config, host_name: str | None = None) -> Topics:
        mqtt = config.mqtt
        node_id = mqtt.node_id or sanitise(host_name or socket.gethostname())
        return cls(
            node_id=node_id,
            base=mqtt.base_topic or f"faced/{node_id}",
            group=mqtt.group_topic,
            prefix=mqtt.discovery_prefix,
        )

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def errors(self) -> str:
        """Where a refused command's ``{"error": …, "entity": …}`` goes (not retained)."""
        return f"{self.base}/error"

    @property
    def ha_status(self) -> str:
        return f"{self.prefix}/{HA_STATUS_TOPIC}"

    def state(self, key: str) -> str:
        return f"{self.base}/{key}"

    def command(self, key: str) -> str:
        return f"{self.base}/{key}/set"

    def subscriptions(self) -> list[str]:
        topics = [f"{self.base}/+/set"]
        if self.group:
            topics.append(f"{self.group}/+/set")
        return topics

    def command_key(self, topic: str) -> str | None:
        """The entity a command topic addresses (this box's or the group's), else None."""
        for root in (self.base, self.group):
            if root and topic.startswith(root + "/") and topic.endswith("/set"):
                key = topic[len(root) + 1 : -len("/set")]
                if "/" not in key:
                    return key
        return None

    def discovery(self, entity: Entity) -> str:
        return f"{self.prefix}/{entity.component}/{self.node_id}/{entity.key}/config"


def device_of(config: Config, topics: Topics, host_name: str | None = None) -> dict[str, Any]:
    """The one device block every entity carries."""
    mqtt = config.mqtt
    host = host_name or socket.gethostname()
    dashboard = mqtt.dashboard_url or f"http://{host}.local:{config.server.port}/dashboard"
    return {
        "identifiers": [f"faced_{topics.node_id}"],
        "name": mqtt.name or f"faced {topics.node_id}",
        "manufacturer": "faced",
        "model": "faced box",
        "sw_version": __version__,
        "configuration_url": dashboard,
    }


def config_of(
    entity: Entity, topics: Topics, device: dict[str, Any], *, face_packs: list[str]
) -> dict[str, Any]:
    """The retained discovery config of ``entity``."""
    unique = f"faced_{topics.node_id}_{entity.key}"
    payload: dict[str, Any] = {
        "name": entity.name,
        "unique_id": unique,
        "default_entity_id": f"{entity.component}.{_ENTITY_SLUG.sub('_', unique.lower())}",
        "availability": [{"topic": topics.availability}],
        "device": device,
        "origin": {"name": "faced", "sw_version": __version__},
        **entity.options,
    }
    if entity.state:
        payload["state_topic"] = topics.state(entity.key)
    if entity.command:
        payload["command_topic"] = topics.command(entity.key)
    if entity.key == "face":
        payload["options"] = list(face_packs)
    return payload


__all__ = [
    "AVAILABLE",
    "BY_KEY",
    "COMMANDS",
    "ENTITIES",
    "NOT_AVAILABLE",
    "OFF",
    "ON",
    "SAY_MAX_CHARS",
    "UNKNOWN",
    "Entity",
    "Topics",
    "config_of",
    "device_of",
    "sanitise",
]
