"""The composition root: builds the aiohttp application and runs the daemon.

Owns: which components the daemon has, the ONE ordered list in which they start (cleanup
runs in reverse), handing each its configuration and the others it needs, the middlewares,
and the order in which route modules are added. Does not own: any component's work — each is a
cleanup context in its own module (faced.openface, faced.live, faced.gaze_follow, …) —
nor any route (faced.api.*, which find their component under its typed key, faced.keys;
health in faced.api.health, the pages in faced.api.pages). Why: the order that matters
(follow after tracking, the speaker after the Open Face service) is written down in one
place, where it reads as the data flow. Only the command line (and the tests) import this
module.

``run(config)`` serves the app with uvloop: bind, then ``READY=1`` to systemd; on SIGTERM
or SIGINT ``STOPPING=1``, stop listening, run ``on_shutdown`` (sockets close with 1001),
let in-flight requests finish for ``server.shutdown_timeout_s``, clean up, exit 0 — all
within ``shutdown_timeout_s + 0.4`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from typing import Final

from aiohttp import web

from faced import __version__, resident
from faced.api import (
    analyze,
    analyze_stream,
    calibration,
    display,
    face_routes,
    follow,
    health,
    jobs,
    metrics,
    openapi,
    pages,
    person,
    presets,
    speaker,
    system,
    tracking,
)
from faced.api.access import AccessPolicy
from faced.api.connections import ConnectionGuard, ConnectionLimits, raise_file_limit
from faced.api.health import Health
from faced.api.middlewares import (
    Guard,
    make_middleware,
    make_response_hook,
)
from faced.api.ratelimit import ClientAddress, RateLimiter, parse_networks
from faced.calibration import STATE_FILE as CALIBRATION_FILE
from faced.calibration import Calibration, Neutral
from faced.components import Components
from faced.config import EX_CONFIG, Config, ConfigError, Layers
from faced.devices.audio import check_sink
from faced.devices.camera import check_source
from faced.discovery import Announcer
from faced.display_policy import DisplayService
from faced.face_packs import Presets
from faced.gateway import Chat
from faced.gaze_follow import FollowService
from faced.interpreter import interpreter_ctx
from faced.jobs.service import Jobs
from faced.keys import (
    ACCESS_KEY,
    CHAT_KEY,
    COMPONENTS_KEY,
    CONFIG_KEY,
    CONNECTIONS_KEY,
    DISPLAY_KEY,
    FOLLOW_KEY,
    GUARD_KEY,
    HEALTH_KEY,
    JOBS_KEY,
    LIFECYCLE_KEY,
    LIVE_KEY,
    MAX_BODY_KEY,
    MDNS_KEY,
    METRICS_KEY,
    MQTT_KEY,
    NOTIFIER_KEY,
    OPENFACE_KEY,
    PRESETS_KEY,
    SETTINGS_KEY,
    SPEAKER_KEY,
    STARTED_KEY,
)
from faced.live import LiveService
from faced.metrics import Metrics
from faced.mqtt.commands import Commands
from faced.mqtt.link import MqttService
from faced.openface import OpenFace
from faced.schemas.audio import VolumeUpdate
from faced.schemas.follow import FollowUpdate
from faced.settings import Settings
from faced.state import StateFile, state_dir
from faced.system import EX_RESTART, Lifecycle, reexec, setup_logging, under_systemd, watchdog_ctx
from faced.vision.runtime import Runtime
from faced.vision.workers import analyze_pool_ctx
from faced.voice import SpeakerService

log = logging.getLogger(__name__)

# Slack for the JSON around a base64 audio chunk ({"data": "…", "seq": N}).
_JSON_ENVELOPE_BYTES: Final = 64 * 1024


def check_supported(config: Config) -> None:
    """Refuse settings the config accepts but this build cannot serve yet."""
    try:
        check_source(config.camera.source)
    except ValueError as exc:
        raise ConfigError(f"camera.source = {config.camera.source!r}: {exc}") from None
    try:
        check_sink(config.audio.sink)
    except ValueError as exc:
        raise ConfigError(f"audio.sink = {config.audio.sink!r}: {exc}") from None


def client_max_size(config: Config) -> int:
    """Largest body aiohttp buffers: a JSON body, or an audio chunk sent as base64 JSON."""
    base64_audio = 4 * math.ceil(config.limits.audio_max_bytes / 3)
    return max(config.server.max_body_bytes, base64_audio + _JSON_ENVELOPE_BYTES)


def create_app(config: Config, layers: Layers | None = None) -> web.Application:
    """The app of ``config``; ``layers`` are the raw layers it was loaded from (the system
    API changes the persisted one), by default all of ``config`` as the lowest."""
    check_supported(config)
    try:
        trusted = parse_networks(config.server.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"server.trusted_proxies: {exc}") from None
    policy = AccessPolicy()
    guard = Guard(
        api_key=config.auth.api_key or None,
        cors_origin=config.server.cors_origin,
        clients=ClientAddress(trusted),
        limiter=RateLimiter(config.limits.requests_per_s, config.limits.request_burst),
        policy=policy,
    )
    # Metrics first: the request middleware tells them of every request.
    stats = Metrics(public=config.metrics.public) if config.metrics.enabled else None
    app = web.Application(
        middlewares=[make_middleware(guard, stats.requests.observe if stats else None)],
        client_max_size=client_max_size(config),
    )
    app[CONFIG_KEY] = config
    app[STARTED_KEY] = time.monotonic()
    app[GUARD_KEY] = guard
    app[CONNECTIONS_KEY] = ConnectionGuard(ConnectionLimits.of(config.server))
    app[ACCESS_KEY] = policy
    app[MAX_BODY_KEY] = config.server.max_body_bytes
    app[LIFECYCLE_KEY] = Lifecycle()
    health = app[HEALTH_KEY] = Health()
    app.on_response_prepare.append(make_response_hook(guard))
    health.add_component(
        "api",
        lambda: {
            "status": "ok",
            "auth": guard.api_key is not None,
            "rate_limited": guard.limiter.rejected,
        },
    )
    if stats is not None:
        app[METRICS_KEY] = stats
        health.add_component("metrics", stats.report)
    _add_components(app, config, health, layers or Layers.of(config), guard)
    _add_routes(app, config)
    return app


def _add_components(
    app: web.Application, config: Config, health: Health, layers: Layers, guard: Guard
) -> None:
    """Build each component with what it needs, and start them in the order data flows."""
    vision = config.vision
    openface = app[OPENFACE_KEY] = OpenFace(config)
    chat = app[CHAT_KEY] = Chat(config)
    neutral_face = Calibration(
        StateFile(state_dir(config), CALIBRATION_FILE, Neutral, fallback="no calibration"),
        lid_drift_correction=vision.lid_drift_correction,
    )
    live = app[LIVE_KEY] = LiveService(
        config, on_presence=openface.presence, calibration=neutral_face
    )
    live.person.observers.append(openface.person)  # attention and speech → the history
    gaze_follow = app[FOLLOW_KEY] = FollowService(config, openface, live)
    face_packs = app[PRESETS_KEY] = Presets(config, publish=openface.viewer_config)
    screen = app[DISPLAY_KEY] = DisplayService.from_config(config.display, openface)
    voice = app[SPEAKER_KEY] = SpeakerService(config, openface)
    settings = app[SETTINGS_KEY] = Settings(config, layers, state_dir(config))
    components = app[COMPONENTS_KEY] = Components(health, state_dir(config))
    announcer = app[MDNS_KEY] = Announcer(config, key_required=lambda: guard.api_key is not None)
    commands = Commands(
        openface,
        face_packs,
        screen,
        voice,
        limiter=guard.limiter,  # a command over MQTT counts as a write request
        max_bytes=config.limits.agent_message_max_bytes,
    )
    mqtt = app[MQTT_KEY] = MqttService(config, commands=commands, live=live, health=health)
    takes = app[JOBS_KEY] = Jobs(config, live)
    analyze_pool = analyze_pool_ctx(
        vision.analyze_workers,
        model_dir=vision.model_dir,
        threads=vision.threads,
        runtime=Runtime.from_config(vision),
        num_faces=vision.num_faces,
        detector=vision.detector,
        idle_unload_s=vision.analyze_idle_unload_s,
        tracking_models=live.tracking_models if vision.analyze_shares_tracker_models else None,
    )

    # The order the data flows in: each starts after what it reads from, and aiohttp
    # cleans them up in reverse. This list is the only place that knows the order.
    app.cleanup_ctx.extend(
        [
            watchdog_ctx,  # systemd: READY=1 once serving, WATCHDOG=1 while alive
            openface.lifetime,  # the face model and the viewers' hub: the single writer
            chat.lifetime,  # POST /api/chat → the OpenClaw gateway
            neutral_face.lifetime,  # the persisted neutral face, before tracking uses it
            live.lifetime,  # camera → tracking → results hub; presence → the face
            gaze_follow.lifetime,  # tracking results → gaze follow → the face state
            face_packs.lifetime,  # the face pack every viewer shows → the viewers' hub
            analyze_pool,  # frames from /v1/analyze* → the analyze workers
            takes.lifetime,  # videos and camera takes → the job process → curves and CSVs
            screen.lifetime,  # the viewers' hub → the display policy → the display
            voice.lifetime,  # /api/audio and the viewers' hub → the speaker → the mouth
            settings.lifetime,  # the persisted settings layer (the system API)
            components.lifetime,  # the saved run-time switches, once all above started
            announcer.lifetime,  # the running daemon → the LAN (mDNS); goodbye first
            mqtt.lifetime,  # every state above → the broker; its commands → the services
            interpreter_ctx,  # once all above started: switch interval, start-up frozen
        ]
    )
    # Sockets and streams close with 1001 before cleanup starts.
    app.on_shutdown.extend([openface.shutdown, live.shutdown, announcer.shutdown, takes.shutdown])

    health.add_summary(openface.summary)
    health.add_component("camera", live.camera_report)
    health.add_component("tracking", live.tracking_report)
    health.add_component("follow", gaze_follow.report)
    health.add_component("display", screen.report)
    health.add_component("speaker", voice.speaker_report)
    health.add_component("tts", voice.tts_report)
    health.add_component("mqtt", mqtt.report)
    health.add_component("mdns", announcer.report)
    health.add_component("perception", live.perception_report)
    health.add_summary(live.blendshapes_summary)
    # MQTT publishes whether the person speaks (from the blendshapes) while connected.
    live.blendshapes.watch("mqtt", lambda: mqtt.connected)
    health.add_component("jobs", takes.report)
    stats = app.get(METRICS_KEY)
    if stats is not None:  # read at scrape time; the tracking timings as results publish
        stats.watch(app)
        live.results.observers.append(stats.tracking)
    _add_system(app)


def _add_system(app: web.Application) -> None:
    """What the system API may change at run time: each setting applied live, and each
    component's switch, one line each (faced.settings, faced.components)."""
    gaze_follow, screen, voice, live = (
        app[FOLLOW_KEY],
        app[DISPLAY_KEY],
        app[SPEAKER_KEY],
        app[LIVE_KEY],
    )
    settings = app[SETTINGS_KEY]
    settings.add_live("follow.mode", lambda mode: gaze_follow.change(FollowUpdate(mode=mode)))
    settings.add_live("follow.hold_s", lambda s: gaze_follow.change(FollowUpdate(hold_s=s)))
    settings.add_live(
        "perception.follow_on_attention", lambda on: setattr(gaze_follow, "on_attention", on)
    )
    settings.add_live("display.policy", screen.set_policy_enabled)
    settings.add_live(
        "vision.lid_drift_correction",
        lambda on: setattr(live.calibration, "lid_drift_correction", on),
    )
    settings.add_live("logging.level", lambda level: logging.getLogger().setLevel(level.upper()))

    components = app[COMPONENTS_KEY]
    components.add_toggle(
        "tracking",
        enabled=lambda: live.live is not None and live.live.enabled,
        switch=lambda on: setattr(live.live, "enabled", on),
        unavailable=lambda: None if live.live is not None else live.tracking_report()["reason"],
    )
    components.add_toggle(
        "follow",
        enabled=lambda: gaze_follow.follower.mode != "off",
        switch=lambda on: settings.patch({"follow": {"mode": _follow_mode(settings, on)}}),
        persist=False,  # follow.mode, in the settings
    )
    components.add_toggle(
        "display",
        enabled=lambda: screen.policy_enabled,
        switch=lambda on: settings.patch({"display": {"policy": on}}),
        unavailable=lambda: None if screen.display is not None else "not started yet",
        persist=False,  # display.policy, in the settings
    )
    components.add_toggle(
        "speaker",
        enabled=lambda: not voice.volume.muted,
        switch=lambda on: voice.set_volume(VolumeUpdate(muted=not on)),
        persist=False,  # the volume's own file
    )
    mqtt = app[MQTT_KEY]
    components.add_toggle(
        "mqtt",
        enabled=lambda: mqtt.enabled and mqtt.switched_on,
        switch=mqtt.switch,
        unavailable=lambda: None if mqtt.enabled else "mqtt.url is not set",
    )


def _follow_mode(settings: Settings, on: bool) -> str | None:
    """Off: "off"; on: the configured mode (the persisted layer's removed), else follow."""
    if not on:
        return "off"
    configured = settings.configured("follow.mode")
    return None if configured != "off" else "follow"


def _add_routes(app: web.Application, config: Config) -> None:
    """The routes of each component (described where they are added, faced.api.openapi),
    then health and the pages; the document of them all last."""
    face_routes.add_routes(app)
    tracking.add_routes(app)
    calibration.add_routes(app)
    person.add_routes(app)
    follow.add_routes(app)
    presets.add_routes(app)
    analyze.setup(app, config.vision)
    analyze_stream.setup(app)
    jobs.add_routes(app)
    display.add_routes(app)
    speaker.add_routes(app)
    system.add_routes(app)
    health.add_routes(app)
    metrics.add_routes(app)
    pages.add_routes(app)
    openapi.setup(app)  # the document of every route above, and the API browser


# --- running the daemon ------------------------------------------------------------------

SHUTDOWN_SLACK_S: Final = 0.4  # on_shutdown + cleanup after in-flight requests had their time


def run(config: Config, layers: Layers | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status. A restart requested through
    the API ends in ``EX_RESTART`` under systemd (its ``Restart=`` starts faced again),
    else in the same command line executed again."""
    setup_logging(config.logging)
    log.debug("open-file limit: %d", raise_file_limit())
    try:
        import uvloop  # noqa: PLC0415

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop has no wheels for every platform; asyncio's loop works
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        status = runner.run(serve(config, layers))
    if status == EX_RESTART and not under_systemd():
        log.info("restarting: executing the same command line again")
        reexec()
    return status


async def serve(config: Config, layers: Layers | None = None) -> int:
    try:
        app = create_app(config, layers)
    except ConfigError as exc:
        log.error("%s", exc)
        return EX_CONFIG
    runner = web.AppRunner(
        app,
        access_log=None,  # faced.api.middlewares logs one line per request
        handle_signals=False,
        shutdown_timeout=config.server.shutdown_timeout_s,
        keepalive_timeout=config.server.keepalive_timeout_s,  # aiohttp's default: an hour
    )
    try:
        await runner.setup()
    except ConfigError as exc:
        log.error("%s", exc)
        await runner.cleanup()
        return EX_CONFIG
    except Exception:
        log.exception("startup failed")
        await runner.cleanup()
        return 1
    host, port = config.server.host, config.server.port
    assert runner.server is not None
    app[CONNECTIONS_KEY].attach(runner.server)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        await runner.cleanup()
        return 1

    lifecycle = app[LIFECYCLE_KEY]
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lifecycle.stop.set)
    notifier = app[NOTIFIER_KEY]
    notifier.notify(f"READY=1\nSTATUS=serving on {host}:{port}")
    log.info(
        "faced %s serving on http://%s:%d",
        __version__,
        host,
        port,
        extra={
            "host": host,
            "port": port,
            "camera": config.camera.source,
            "loop": type(loop).__module__.split(".")[0],
        },
    )
    # Start-up's allocations and the libraries' start-up pages go back once tracking runs
    # (faced.resident: 122 -> 89 MiB resident with the demo camera, docs/performance.md).
    settling = asyncio.create_task(resident.settle_after(), name="settle")
    await lifecycle.stop.wait()
    settling.cancel()

    notifier.notify("STOPPING=1\nSTATUS=stopping")
    log.info("stopping")
    started = time.monotonic()
    try:
        async with asyncio.timeout(config.server.shutdown_timeout_s + SHUTDOWN_SLACK_S):
            await runner.cleanup()
    except TimeoutError:
        log.error("shutdown did not finish in time; exiting anyway")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
    log.info("stopped in %.2f s", time.monotonic() - started)
    return EX_RESTART if lifecycle.restart else 0


__all__ = [
    "check_supported",
    "client_max_size",
    "create_app",
    "run",
    "serve",
]
