"""Every key of the aiohttp application, typed: where each shared object is found.

Owns: the names under which the composition root (faced.app) puts the shared objects, and
their types. Does not own: the objects, or when they start (faced.app says that). Why here:
a route module, a component and a test look an object up by the same key without importing
the module that made it, so no module needs faced.app back; the types are imported for the
type checker only, so this module imports nothing of faced when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from faced.api.access import AccessPolicy
    from faced.api.analyze import AnalyzeApi
    from faced.api.connections import ConnectionGuard
    from faced.api.health import Health
    from faced.api.middlewares import Guard
    from faced.api.openapi import ApiDocs
    from faced.components import Components
    from faced.config import Config
    from faced.discovery import Announcer
    from faced.display_policy import DisplayService
    from faced.face_packs import Presets
    from faced.gateway import Chat
    from faced.gaze_follow import FollowService
    from faced.jobs.service import Jobs
    from faced.live import LiveService
    from faced.metrics import Metrics
    from faced.mqtt.link import MqttService
    from faced.openface import OpenFace
    from faced.settings import Settings
    from faced.system import Lifecycle, Notifier
    from faced.vision.workers import AnalyzePool
    from faced.voice import SpeakerService

# The daemon core: set by faced.app.create_app.
CONFIG_KEY: Final[web.AppKey[Config]] = web.AppKey("config")
STARTED_KEY: Final[web.AppKey[float]] = web.AppKey("started_monotonic")
GUARD_KEY: Final[web.AppKey[Guard]] = web.AppKey("guard")
CONNECTIONS_KEY: Final[web.AppKey[ConnectionGuard]] = web.AppKey("connections")
"""The connections' deadlines and caps (faced.api.connections); attached to the server by
faced.app's ``serve``, read by the metrics."""
ACCESS_KEY: Final[web.AppKey[AccessPolicy]] = web.AppKey("access_policy")
MAX_BODY_KEY: Final[web.AppKey[int]] = web.AppKey("max_body_bytes")
HEALTH_KEY: Final[web.AppKey[Health]] = web.AppKey("health")
OPENAPI_KEY: Final[web.AppKey[ApiDocs]] = web.AppKey("openapi")
METRICS_KEY: Final[web.AppKey[Metrics]] = web.AppKey("metrics")
"""Set when metrics.enabled (faced.metrics)."""
NOTIFIER_KEY: Final[web.AppKey[Notifier]] = web.AppKey("notifier")
"""Set when the watchdog component starts (faced.system.watchdog_ctx)."""
LIFECYCLE_KEY: Final[web.AppKey[Lifecycle]] = web.AppKey("lifecycle")
"""The stop and restart requests ``faced.app.serve`` waits for."""
SETTINGS_KEY: Final[web.AppKey[Settings]] = web.AppKey("settings")
COMPONENTS_KEY: Final[web.AppKey[Components]] = web.AppKey("components")
SYSTEM_ROOT_KEY: Final[web.AppKey[Path]] = web.AppKey("system_root")
"""Where GET /api/about reads the host's files (/ unless a test sets a temp tree)."""

# The components, in the order the data flows through them.
OPENFACE_KEY: Final[web.AppKey[OpenFace]] = web.AppKey("openface")
CHAT_KEY: Final[web.AppKey[Chat]] = web.AppKey("chat")
LIVE_KEY: Final[web.AppKey[LiveService]] = web.AppKey("live")
FOLLOW_KEY: Final[web.AppKey[FollowService]] = web.AppKey("follow")
PRESETS_KEY: Final[web.AppKey[Presets]] = web.AppKey("presets")
ANALYZE_POOL_KEY: Final[web.AppKey[AnalyzePool]] = web.AppKey("analyze_pool")
"""Set when the pool has loaded (faced.vision.workers.analyze_pool_ctx)."""
ANALYZE_API_KEY: Final[web.AppKey[AnalyzeApi]] = web.AppKey("analyze_api")
DISPLAY_KEY: Final[web.AppKey[DisplayService]] = web.AppKey("display")
SPEAKER_KEY: Final[web.AppKey[SpeakerService]] = web.AppKey("speaker")
MDNS_KEY: Final[web.AppKey[Announcer]] = web.AppKey("mdns")
MQTT_KEY: Final[web.AppKey[MqttService]] = web.AppKey("mqtt")
JOBS_KEY: Final[web.AppKey[Jobs]] = web.AppKey("jobs")

__all__ = [
    "ACCESS_KEY",
    "ANALYZE_API_KEY",
    "ANALYZE_POOL_KEY",
    "CHAT_KEY",
    "COMPONENTS_KEY",
    "CONFIG_KEY",
    "CONNECTIONS_KEY",
    "DISPLAY_KEY",
    "FOLLOW_KEY",
    "GUARD_KEY",
    "HEALTH_KEY",
    "JOBS_KEY",
    "LIFECYCLE_KEY",
    "LIVE_KEY",
    "MAX_BODY_KEY",
    "MDNS_KEY",
    "METRICS_KEY",
    "MQTT_KEY",
    "NOTIFIER_KEY",
    "OPENAPI_KEY",
    "OPENFACE_KEY",
    "PRESETS_KEY",
    "SETTINGS_KEY",
    "SPEAKER_KEY",
    "STARTED_KEY",
    "SYSTEM_ROOT_KEY",
]
