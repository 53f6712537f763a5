"""Where the effective config comes from, layer by layer: defaults < credentials < TOML file
< persisted < environment < flags.

Owns: reading each layer (the TOML file, the environment names Open Face uses, systemd's
credentials, the system API's persisted document in the state directory), merging them, and
``Layers``, which the system API changes and re-validates. Does not own: the schema
(faced.config.sections) or the rules (faced.config.validation). Why apart: the order of the
layers is a decision of its own, documented in docs/configuration.md.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import msgspec.inspect

from faced.config.sections import Config
from faced.config.validation import ConfigError, check_types, validate

DEFAULT_CONFIG_PATH: Final = Path("/etc/faced/faced.toml")

# Environment variables (names from the Open Face docs) and the key each one sets.
ENVIRONMENT: Final[Mapping[str, tuple[str, str]]] = {
    "PORT": ("server", "port"),
    "FACE_API_KEY": ("auth", "api_key"),
    "OPENCLAW_GATEWAY_URL": ("openclaw", "gateway_url"),
    "OPENCLAW_GATEWAY_TOKEN": ("openclaw", "gateway_token"),
    "OPENCLAW_SESSION_KEY": ("openclaw", "session_key"),
}


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except PermissionError:
        raise ConfigError(f"config file {path}: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None


def environment_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, (section, key) in ENVIRONMENT.items():
        if name in environ:
            layer.setdefault(section, {})[key] = environ[name]
    return layer


# systemd credential (LoadCredential=api-key:/etc/faced/api-key) holding auth.api_key.
API_KEY_CREDENTIAL: Final = "api-key"

# systemd credential (LoadCredential=mqtt-password:…) holding mqtt.password.
MQTT_PASSWORD_CREDENTIAL: Final = "mqtt-password"


def credentials_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """auth.api_key (and mqtt.password) from systemd's credentials directory, so a secret
    never sits in the environment or a world-readable file. The lowest layer above the
    defaults: a key set in the TOML file, the environment or a flag wins; the appliance's
    unit sets it up."""
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return {}
    layer: dict[str, Any] = {}
    key = _credential(Path(directory) / API_KEY_CREDENTIAL, "the API key")
    if key is not None:
        layer["auth"] = {"api_key": key}
    password = _credential(Path(directory) / MQTT_PASSWORD_CREDENTIAL, "the MQTT password")
    if password is not None:
        layer["mqtt"] = {"password": password}
    return layer


def _credential(path: Path, what: str) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"credential {path}: unreadable ({reason})") from None
    if not value:
        raise ConfigError(f"credential {path}: empty, expected {what}")
    return value


# The layer the system API persists (PATCH /api/system/config), in the state directory.
PERSISTED_LAYER_FILE: Final = "config.json"


def resolve_state_dir(configured: str, environ: Mapping[str, str]) -> Path:
    """Where API-changed settings persist: ``server.state_dir``, else systemd's
    ``$STATE_DIRECTORY``, else ~/.local/state/faced."""
    if configured:
        return Path(configured).expanduser()
    systemd_dir = environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd_dir:
        return Path(systemd_dir)
    return Path.home() / ".local" / "state" / "faced"


class Layers:
    """The raw layers one effective Config is made of: ``below`` (credentials, the TOML
    file), ``persisted`` (the system API's), ``above`` (environment, flags). The system API
    changes ``persisted`` and validates the result the way startup does."""

    def __init__(
        self,
        below: Mapping[str, Any],
        above: Mapping[str, Any],
        *,
        origin: str = "config",
        persisted: Mapping[str, Any] | None = None,
        persisted_path: Path | None = None,
    ) -> None:
        self.below = dict(below)
        self.above = dict(above)
        self.origin = origin
        self.persisted: dict[str, Any] = dict(persisted or {})
        self.persisted_path = persisted_path
        """Where the persisted layer lives; None: in the state directory of ``effective``."""

    @classmethod
    def of(cls, config: Config) -> Layers:
        """The layers of a Config built without them (a test's): all of it below."""
        return cls(msgspec.to_builtins(config), {})

    def merged(self, persisted: Mapping[str, Any] | None = None) -> dict[str, Any]:
        layer = self.persisted if persisted is None else persisted
        return _deep_merge(_deep_merge(self.below, layer), self.above)

    def effective(
        self, persisted: Mapping[str, Any] | None = None, origin: str | None = None
    ) -> Config:
        return validate(self.merged(persisted), origin or self.origin)


def read_persisted_layer(path: Path) -> dict[str, Any]:
    """The persisted layer's document, {} when there is none. ConfigError when it cannot
    be read or is not a JSON object (the caller decides whether that stops anything)."""
    try:
        data = msgspec.json.decode(path.read_bytes())
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: unreadable ({exc.strerror})") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of config sections")
    return data


def load_layers(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    persisted: bool = True,
) -> Layers:
    """The layers of the effective config: defaults < credentials < TOML file < the
    persisted layer (the system API's, ``<state dir>/config.json``) < environment < flags.
    A persisted layer that cannot be read or no longer validates is left out with a warning
    on stderr: a box must still start when a file it wrote itself went bad (the API can
    then fix it). ``path`` None means the default file if it exists."""
    environ = os.environ if environ is None else environ
    below: dict[str, Any] = credentials_layer(environ)
    origin = "config"
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        origin = str(path)
        file_layer = read_toml(path)
        validate(file_layer, origin)  # report file errors against the file, before other layers
        below = _deep_merge(below, file_layer)
    above = _deep_merge(environment_layer(environ), overrides or {})
    layers = Layers(below, above, origin=origin)
    if not persisted:
        return layers
    base = layers.effective()  # errors of the file, environment and flags come first
    layer_path = resolve_state_dir(base.server.state_dir, environ) / PERSISTED_LAYER_FILE
    layers.persisted_path = layer_path
    try:
        layer = read_persisted_layer(layer_path)
        check_types(layer, str(layer_path))
        layers.effective(layer)
    except ConfigError as exc:
        print(f"faced: ignoring the persisted settings: {exc}", file=sys.stderr)
        return layers
    layers.persisted = layer
    return layers


def load(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    persisted: bool = True,
) -> Config:
    """Load the effective config (see ``load_layers`` for the order of the layers)."""
    return load_layers(path, environ=environ, overrides=overrides, persisted=persisted).effective()
