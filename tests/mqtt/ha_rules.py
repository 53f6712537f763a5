"""Home Assistant's rules for MQTT discovery configs, as its documentation states them.

From home-assistant.io's mqtt, binary_sensor.mqtt, sensor.mqtt, select.mqtt, text.mqtt,
button.mqtt, switch.mqtt and number.mqtt pages (the keys each platform accepts, spelled out,
not abbreviated) and the 2025.10 deprecation of the ``object_id`` payload key in favour of
``default_entity_id``. Not Home Assistant's code: a checker written from its documents.
"""

from __future__ import annotations

import re
from typing import Any

TOPIC = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_/-]+)/(?P<component>[a-z_]+)/(?P<node>[A-Za-z0-9_-]+)/"
    r"(?P<object>[A-Za-z0-9_-]+)/config$"
)
COMMON = {
    "name",
    "unique_id",
    "default_entity_id",
    "availability",
    "availability_mode",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "entity_category",
    "icon",
    "enabled_by_default",
    "json_attributes_topic",
    "json_attributes_template",
    "qos",
    "encoding",
    "entity_picture",
}
STATEFUL = {"state_topic", "value_template"}
COMMANDED = {"command_topic", "command_template", "retain", "optimistic"}
PLATFORM_KEYS = {
    "binary_sensor": STATEFUL
    | {"device_class", "payload_on", "payload_off", "expire_after", "force_update", "off_delay"},
    "sensor": STATEFUL
    | {
        "device_class",
        "unit_of_measurement",
        "state_class",
        "expire_after",
        "force_update",
        "suggested_display_precision",
        "options",
        "last_reset_value_template",
    },
    "select": STATEFUL | COMMANDED | {"options"},
    "text": STATEFUL | COMMANDED | {"min", "max", "mode", "pattern"},
    "button": COMMANDED | {"device_class", "payload_press"},
    "switch": STATEFUL
    | COMMANDED
    | {"device_class", "payload_on", "payload_off", "state_on", "state_off"},
    "number": STATEFUL
    | COMMANDED
    | {"device_class", "min", "max", "step", "mode", "unit_of_measurement", "payload_reset"},
}
COMMAND_REQUIRED = {"select", "text", "button", "switch", "number"}
DEVICE_KEYS = {
    "identifiers",
    "connections",
    "name",
    "manufacturer",
    "model",
    "model_id",
    "sw_version",
    "hw_version",
    "serial_number",
    "configuration_url",
    "suggested_area",
    "via_device",
}
BINARY_CLASSES = {
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
}
DISTANCE_UNITS = {"km", "m", "cm", "mm", "mi", "nmi", "yd", "in", "ft"}
ENTITY_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")


def check(topic: str, payload: dict[str, Any]) -> list[str]:
    """What breaks Home Assistant's rules in one discovery config (empty: nothing)."""
    problems: list[str] = []
    match = TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not <prefix>/<component>/<node_id>/<object_id>/config"]
    component = match["component"]
    allowed = COMMON | PLATFORM_KEYS.get(component, set())
    if component not in PLATFORM_KEYS:
        problems.append(f"{topic}: unknown component {component}")
    if "object_id" in payload:
        problems.append(f"{topic}: object_id is deprecated (2025.10): use default_entity_id")
    problems += [
        f"{topic}: key {key!r} not accepted by {component}" for key in payload.keys() - allowed
    ]
    if not payload.get("unique_id"):
        problems.append(f"{topic}: no unique_id")
    entity_id = payload.get("default_entity_id", "")
    if not ENTITY_ID.match(entity_id) or not entity_id.startswith(component + "."):
        problems.append(f"{topic}: default_entity_id {entity_id!r} is not {component}.<slug>")
    device = payload.get("device", {})
    if not device.get("identifiers") and not device.get("connections"):
        problems.append(f"{topic}: device without identifiers")
    problems += [f"{topic}: device key {key!r}" for key in device.keys() - DEVICE_KEYS]
    if "availability" in payload and "availability_topic" in payload:
        problems.append(f"{topic}: availability and availability_topic are exclusive")
    for entry in payload.get("availability", []):
        if not isinstance(entry, dict) or "topic" not in entry:
            problems.append(f"{topic}: availability entry without topic")
    for key in ("state_topic", "command_topic"):
        value = payload.get(key)
        if value is not None and (not value or "+" in value or "#" in value):
            problems.append(f"{topic}: {key} {value!r} is not a publishable topic")
    if component in COMMAND_REQUIRED and "command_topic" not in payload:
        problems.append(f"{topic}: {component} needs command_topic")
    if component == "select":
        options = payload.get("options")
        if not options or not all(isinstance(o, str) and o for o in options):
            problems.append(f"{topic}: select needs a non-empty list of options")
    if component in ("number", "text") and not payload.get("min", 0) < payload.get("max", 100):
        problems.append(f"{topic}: min must be below max")
    if component == "text" and payload.get("max", 255) > 255:
        problems.append(f"{topic}: text max above 255")
    if component == "number" and payload.get("step", 1) <= 0:
        problems.append(f"{topic}: number step must be positive")
    binary_class = payload.get("device_class", "occupancy")
    if component == "binary_sensor" and binary_class not in BINARY_CLASSES:
        problems.append(f"{topic}: binary_sensor device_class {payload['device_class']}")
    if component == "sensor":
        unit = payload.get("unit_of_measurement")
        if payload.get("device_class") == "distance" and unit not in DISTANCE_UNITS:
            problems.append(f"{topic}: a distance needs a length unit")
        state_class = payload.get("state_class", "measurement")
        if state_class not in ("measurement", "total", "total_increasing"):
            problems.append(f"{topic}: state_class {payload['state_class']}")
        if payload.get("entity_category") == "config":
            problems.append(f"{topic}: a sensor cannot be a config entity")
    if payload.get("entity_category", "diagnostic") not in ("config", "diagnostic"):
        problems.append(f"{topic}: entity_category {payload['entity_category']}")
    return problems
