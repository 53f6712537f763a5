"""Every key of the aiohttp application, typed: where each shared object is found.

Owns: the names under which the composition root (faced.app) puts the shared objects, and
their types. Does not own: the objects, or when they start (faced.app says that). Why here:
a route module, a component and a test look an object up by the same key without importing
the module that made it, so no module needs faced.app back; the types are imported for the
type checker only, so this module imports nothing of faced when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from faced.api.access import AccessPolicy
    from faced.api.analyze import AnalyzeApi
    from faced.api.health import Health
    from faced.api.middlewares import Guard
    from faced.api.openapi import ApiDocs
    from faced.config import Config
    from faced.display_policy import DisplayService
    from faced.face_packs import Presets
    from faced.gateway import Chat
    from faced.gaze_follow import FollowService
    from faced.live import LiveService
    from faced.mqtt.link import MqttService
    from faced.openface import OpenFace
    from faced.system import Notifier
    from faced.vision.workers import AnalyzePool
    from faced.voice import SpeakerService

# The daemon core: set by faced.app.create_app.
CONFIG_KEY: Final[web.AppKey[Config]] = web.AppKey("config")
STARTED_KEY: Final[web.AppKey[float]] = web.AppKey("started_monotonic")
GUARD_KEY: Final[web.AppKey[Guard]] = web.AppKey("guard")
ACCESS_KEY: Final[web.AppKey[AccessPolicy]] = web.AppKey("access_policy")
MAX_BODY_KEY: Final[web.AppKey[int]] = web.AppKey("max_body_bytes")
HEALTH_KEY: Final[web.AppKey[Health]] = web.AppKey("health")
OPENAPI_KEY: Final[web.AppKey[ApiDocs]] = web.AppKey("openapi")
NOTIFIER_KEY: Final[web.AppKey[Notifier]] = web.AppKey("notifier")
"""Set when the watchdog component starts (faced.system.watchdog_ctx)."""

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
MQTT_KEY: Final[web.AppKey[MqttService]] = web.AppKey("mqtt")

__all__ = [
    "ACCESS_KEY",
    "ANALYZE_API_KEY",
    "ANALYZE_POOL_KEY",
    "CHAT_KEY",
    "CONFIG_KEY",
    "DISPLAY_KEY",
    "FOLLOW_KEY",
    "GUARD_KEY",
    "HEALTH_KEY",
    "LIVE_KEY",
    "MAX_BODY_KEY",
    "MQTT_KEY",
    "NOTIFIER_KEY",
    "OPENAPI_KEY",
    "OPENFACE_KEY",
    "PRESETS_KEY",
    "SPEAKER_KEY",
    "STARTED_KEY",
]
