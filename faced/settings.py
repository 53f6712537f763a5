"""The configuration the system API reads and changes: the persisted layer and applying it.

Owns: ``Settings`` — the effective configuration (secrets masked), a partial document
merged into the persisted layer (``<state dir>/config.json``, RFC 7386 style: ``null``
removes a key from the layer), validated by the same typed config as startup (faced.config:
a bad value is a 400 naming the key path, the value and what is expected, and nothing is
applied or written), written atomically (faced.state), then applied live by the appliers
components registered (``add_live(key, apply)``) and, for every other changed key, listed
in ``restart_required``. Does not own: the layers' order or the schema (faced.config), the
routes (faced.api.system), or what a component does with a value (its applier). Why apart:
the only writer of the persisted layer, so a change is validated once, the same way.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
from aiohttp import web

from faced.api.errors import ApiError
from faced.config import (
    PERSISTED_LAYER_FILE,
    SECRETS,
    Config,
    ConfigError,
    Layers,
    check_types,
    read_persisted_layer,
    to_dict,
)
from faced.devices.audio import check_sink
from faced.devices.camera import check_source
from faced.schemas.system import ConfigReport
from faced.state import save_refused, write_atomically

log = logging.getLogger(__name__)

ORIGIN: Final = "PATCH /api/system/config"
MASK: Final = "********"
# The persisted layer lives in the state directory: it cannot move it.
NOT_PATCHABLE: Final = frozenset({"server.state_dir"})

Applier = Callable[[Any], Awaitable[None] | None]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} → {"a.b": 1} (lists are values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def merge_patch(layer: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: objects merge, ``null`` removes, anything else replaces."""
    merged = dict(layer)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            below = merged.get(key)
            merged[key] = merge_patch(below if isinstance(below, Mapping) else {}, value)
            if not merged[key]:
                del merged[key]
        else:
            merged[key] = value
    return merged


def _masked(layer: Mapping[str, Any]) -> dict[str, Any]:
    masked = msgspec.convert(layer, dict[str, Any])
    for section, key in SECRETS:
        if isinstance(masked.get(section), dict) and masked[section].get(key):
            masked[section] = {**masked[section], key: MASK}
    return masked


def _bad(exc: ConfigError) -> ApiError:
    extra: dict[str, Any] = {}
    if exc.key is not None:
        extra = {"field": exc.key, "value": exc.value, "expected": exc.expected}
    return ApiError(400, str(exc), extra=extra)


class Settings:
    def __init__(self, config: Config, layers: Layers, directory: Path) -> None:
        self.layers = layers
        self._loaded = layers.persisted_path is not None
        self.path = layers.persisted_path or directory / PERSISTED_LAYER_FILE
        self._running = flatten(msgspec.to_builtins(config))
        """Each key's value in the running daemon: what it started with, and what was
        applied live since."""
        self._live: dict[str, Applier] = {}
        self._lock = asyncio.Lock()

    def add_live(self, key: str, apply: Applier) -> None:
        """``apply(value)`` takes a new value of ``key`` (dotted) without a restart."""
        self._live[key] = apply

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the persisted layer, where the config was not loaded with it (a
        test's app): then its keys show as ``restart_required``."""
        del app
        if not self._loaded:
            try:
                layer = await asyncio.to_thread(read_persisted_layer, self.path)
                check_types(layer, str(self.path))
                self.layers.effective(layer)
            except ConfigError as exc:
                log.warning("ignoring the persisted settings: %s", exc)
            else:
                self.layers.persisted = layer
        yield

    def _restart_required(self, effective: Config) -> list[str]:
        flat = flatten(msgspec.to_builtins(effective))
        return sorted(k for k, v in flat.items() if self._running.get(k) != v)

    def report(self, applied: list[str] | None = None) -> ConfigReport:
        effective = self.layers.effective()
        return ConfigReport(
            config=to_dict(effective, mask_secrets=True),
            persisted=_masked(self.layers.persisted),
            restart_required=self._restart_required(effective),
            applied=applied or [],
        )

    def _clean(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """The patch without what changes nothing — a masked secret sent back, a value the
        key has already (so a GET's document PATCHed back whole pins nothing in the layer);
        refuses what the API may not set."""
        current = flatten(msgspec.to_builtins(self.layers.effective()))
        layer = flatten(self.layers.persisted)
        cleaned: dict[str, Any] = {}
        for section, values in patch.items():
            if not isinstance(values, Mapping):
                cleaned[section] = values  # the typed check names it
                continue
            kept: dict[str, Any] = {}
            for key, value in values.items():
                path = f"{section}.{key}"
                if (section, key) in SECRETS and value == MASK:
                    continue
                if path not in layer and path in current and current[path] == value:
                    continue
                if path in NOT_PATCHABLE:
                    raise ApiError(
                        400,
                        f"{path} cannot be set through the API: the persisted settings live "
                        "in the state directory; set it in the config file",
                        extra={"field": path, "value": value},
                    )
                kept[key] = value
            if kept or not values:
                cleaned[section] = kept
        return cleaned

    async def patch(self, patch: Mapping[str, Any]) -> ConfigReport:
        """Validate, persist, apply; nothing changes when a value is refused."""
        async with self._lock:
            layers = self.layers
            layer = merge_patch(layers.persisted, self._clean(patch))
            try:
                check_types(layer, ORIGIN)
                effective = layers.effective(layer, ORIGIN)
            except ConfigError as exc:
                raise _bad(exc) from None
            for key, check in (("camera.source", check_source), ("audio.sink", check_sink)):
                value = flatten(msgspec.to_builtins(effective))[key]
                try:
                    check(value)
                except ValueError as exc:
                    message = f"{ORIGIN}: {key} = {value!r}: {exc}"
                    raise ApiError(
                        400, message, extra={"field": key, "value": value, "expected": str(exc)}
                    ) from None
            before = flatten(msgspec.to_builtins(layers.effective()))
            try:
                await asyncio.to_thread(
                    write_atomically, self.path, msgspec.json.encode(layer), 0o600
                )
            except OSError as exc:
                log.error("cannot persist the settings to %s: %s", self.path, exc)
                raise save_refused(exc, f"the settings in {self.path.parent}") from None
            layers.persisted = layer
            after = flatten(msgspec.to_builtins(effective))
            applied = []
            for key, value in after.items():
                apply = self._live.get(key)
                if apply is None or value == self._running.get(key):
                    continue
                result = apply(value)
                if inspect.isawaitable(result):
                    await result
                self._running[key] = value
                applied.append(key)
            changed = sorted(k for k in after if after[k] != before.get(k))
            log.info("settings changed", extra={"keys": changed, "applied": applied})
            return self.report(applied)

    def value(self, key: str) -> Any:
        """A key's value in the effective config (dotted path)."""
        return flatten(msgspec.to_builtins(self.layers.effective()))[key]

    def configured(self, key: str) -> Any:
        """A key's value without the persisted layer (the file, environment, flags)."""
        return flatten(msgspec.to_builtins(self.layers.effective({})))[key]


__all__ = ["Settings", "flatten", "merge_patch"]
