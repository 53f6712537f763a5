"""Validating a raw config document: one line naming the key path, the value, the expectation.

Owns: ``ConfigError`` (the CLI exits ``EX_CONFIG``, 78), type checks through msgspec turned
into sentences, the rules a type cannot express (networks, display times, MQTT topics), and
the masked view of the secrets (``to_dict``). Does not own: where the layers come from
(faced.config.layers). Why apart: the system API validates a PATCH with exactly the rules
startup uses, without reading any file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec
import msgspec.inspect

from faced.config.sections import Config, MqttConfig

EX_CONFIG: Final = 78  # sysexits.h: configuration error

# Keys whose values `faced config show` masks.
SECRETS: Final = frozenset(
    {("auth", "api_key"), ("openclaw", "gateway_token"), ("mqtt", "password")}
)


class ConfigError(Exception):
    """A configuration problem, worded as the one line the user sees. ``key`` (dotted path),
    ``value`` and ``expected`` say the same in parts, where one key is to blame (the system
    API answers them as fields)."""

    def __init__(
        self, message: str, *, key: str | None = None, value: Any = None, expected: str = ""
    ) -> None:
        super().__init__(message)
        self.key = key
        self.value = value
        self.expected = expected


def _value_at(raw: Mapping[str, Any], path: list[str]) -> Any:
    node: Any = raw
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


_PATH_RE = re.compile(r" - at `\$\.?([^`]*)`$")


def _explain(exc: msgspec.ValidationError, raw: Mapping[str, Any], origin: str) -> ConfigError:
    """Turn msgspec's message into `origin: key = value: expected …`."""
    message = str(exc)
    match = _PATH_RE.search(message)
    path = [p for p in re.split(r"\.|\[|\]", match.group(1)) if p] if match else []
    expected = message[: match.start()] if match else message
    unknown = re.match(r"Object contains unknown field `([^`]+)`", expected)
    if unknown:
        key = ".".join([*path, unknown.group(1)])
        return ConfigError(
            f"{origin}: unknown key {key}: not a faced setting",
            key=key,
            value=_value_at(raw, [*path, unknown.group(1)]),
            expected="not a faced setting",
        )
    key = ".".join(path)
    value = _value_at(raw, path)
    if expected.startswith("Invalid enum value"):
        expected = f"expected one of {', '.join(_choices(path))}"
    return ConfigError(
        f"{origin}: {key} = {value!r}: {expected}", key=key, value=value, expected=expected
    )


def _choices(path: list[str]) -> list[str]:
    """The allowed values of a Literal-typed key, for error messages."""
    node: Any = Config
    for part in path:
        hints = msgspec.inspect.type_info(node)
        field = next((f for f in getattr(hints, "fields", ()) if f.name == part), None)
        if field is None:
            return []
        node = field.type
        if isinstance(node, msgspec.inspect.StructType):
            node = node.cls
    if isinstance(node, msgspec.inspect.LiteralType):
        return [str(v) for v in node.values]
    return []


def check_types(raw: Mapping[str, Any], origin: str = "config") -> Config:
    """Convert one layer on its own: its keys exist and its values have their types (the
    rules between keys need the merged layers, ``validate``)."""
    try:
        return msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise _explain(exc, raw, origin) from None


def validate(raw: Mapping[str, Any], origin: str = "config") -> Config:
    """Build a Config from plain data, converting strings from the environment/CLI."""
    config = check_types(raw, origin)
    _check_semantics(config, origin)
    return config


# display.night: HH:MM-HH:MM, 24-hour local time.
_CLOCK: Final = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"

_NIGHT_RE: Final = re.compile(f"({_CLOCK})-({_CLOCK})")


def _check_semantics(config: Config, origin: str) -> None:
    """Rules a type cannot express, worded like the type errors."""
    for index, entry in enumerate(config.server.trusted_proxies):
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"{origin}: server.trusted_proxies[{index}] = {entry!r}: "
                "expected an IP address or CIDR network",
                key=f"server.trusted_proxies[{index}]",
                value=entry,
                expected="expected an IP address or CIDR network",
            ) from None
    _check_mqtt(config.mqtt, origin)
    display = config.display
    if 0 < display.idle_off_after_s <= display.idle_dim_after_s:
        expected = (
            f"expected more than display.idle_dim_after_s ({display.idle_dim_after_s!r}), "
            "or 0 (never off)"
        )
        raise ConfigError(
            f"{origin}: display.idle_off_after_s = {display.idle_off_after_s!r}: {expected}",
            key="display.idle_off_after_s",
            value=display.idle_off_after_s,
            expected=expected,
        )
    night = _NIGHT_RE.fullmatch(display.night)
    if display.night and (night is None or night.group(1) == night.group(2)):
        expected = (
            "expected HH:MM-HH:MM with different start and end (local time, e.g. "
            "23:00-07:00), or empty"
        )
        raise ConfigError(
            f"{origin}: display.night = {display.night!r}: {expected}",
            key="display.night",
            value=display.night,
            expected=expected,
        )


def _check_mqtt(mqtt: MqttConfig, origin: str) -> None:
    if not mqtt.url:
        return
    parts = urlsplit(mqtt.url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1:
        expected = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], or empty (no MQTT)"
        raise ConfigError(
            f"{origin}: mqtt.url = {mqtt.url!r}: {expected}",
            key="mqtt.url",
            value=mqtt.url,
            expected=expected,
        )
    for name in ("base_topic", "group_topic"):
        topic = getattr(mqtt, name)
        wild = any(c in topic for c in "+#\x00")
        if topic and (wild or topic.startswith("/") or topic.endswith("/")):
            expected = "expected a topic without wildcards (+, #) or a leading/trailing /"
            raise ConfigError(
                f"{origin}: mqtt.{name} = {topic!r}: {expected}",
                key=f"mqtt.{name}",
                value=topic,
                expected=expected,
            )


def to_dict(config: Config, *, mask_secrets: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(config)
    if mask_secrets:
        for section, key in SECRETS:
            if data[section].get(key):
                data[section][key] = "********"
    return data
