"""The daemon's one typed configuration: defaults < TOML file < persisted < environment < flags.

Owns: the one import every component uses (``from faced.config import Config``); the work
is in three modules — the schema (faced.config.sections), the rules and their one-line
errors (faced.config.validation; the CLI exits 78), and the layers and their order
(faced.config.layers). Every section a component reads is declared there, so `faced config
show` prints the whole effective configuration and `faced config check` validates all of
it. Does not own: what a component does with its section (each is handed its own by
faced.app), or the settings an API change persists (faced.state). Why: a bad value stops
the daemon at startup with one line, before any component has started.
"""

from __future__ import annotations

from faced.config.layers import (
    API_KEY_CREDENTIAL,
    DEFAULT_CONFIG_PATH,
    ENVIRONMENT,
    MQTT_PASSWORD_CREDENTIAL,
    PERSISTED_LAYER_FILE,
    Layers,
    credentials_layer,
    environment_layer,
    load,
    load_layers,
    read_persisted_layer,
    read_toml,
    resolve_state_dir,
)
from faced.config.sections import (
    AudioConfig,
    AuthConfig,
    CameraConfig,
    Config,
    DisplayConfig,
    FaceConfig,
    FollowConfig,
    JobsConfig,
    LimitsConfig,
    LoggingConfig,
    MdnsConfig,
    MetricsConfig,
    MqttConfig,
    NonNegativeFloat,
    OpenClawConfig,
    PerceptionConfig,
    Port,
    PositiveFloat,
    PositiveInt,
    ServerConfig,
    TtsConfig,
    VisionConfig,
)
from faced.config.validation import (
    EX_CONFIG,
    SECRETS,
    ConfigError,
    check_types,
    to_dict,
    validate,
)

__all__ = [
    "API_KEY_CREDENTIAL",
    "DEFAULT_CONFIG_PATH",
    "ENVIRONMENT",
    "EX_CONFIG",
    "MQTT_PASSWORD_CREDENTIAL",
    "PERSISTED_LAYER_FILE",
    "SECRETS",
    "AudioConfig",
    "AuthConfig",
    "CameraConfig",
    "Config",
    "ConfigError",
    "DisplayConfig",
    "FaceConfig",
    "FollowConfig",
    "JobsConfig",
    "Layers",
    "LimitsConfig",
    "LoggingConfig",
    "MdnsConfig",
    "MetricsConfig",
    "MqttConfig",
    "NonNegativeFloat",
    "OpenClawConfig",
    "PerceptionConfig",
    "Port",
    "PositiveFloat",
    "PositiveInt",
    "ServerConfig",
    "TtsConfig",
    "VisionConfig",
    "check_types",
    "credentials_layer",
    "environment_layer",
    "load",
    "load_layers",
    "read_persisted_layer",
    "read_toml",
    "resolve_state_dir",
    "to_dict",
    "validate",
]
