"""The composition root: builds the aiohttp application and runs the daemon.

Owner: the daemon core (issue 3). The only module that imports all the others.

``create_app(config)`` puts the shared objects under typed ``web.AppKey``s, installs the
middlewares (faced.api.middlewares), registers each long-lived component as a
``cleanup_ctx`` in flow order (camera → pipeline → hub → api; cleanup runs in reverse),
and adds the routes: the Open Face protocol (faced.api.openface), health, the pages.

``run(config)`` serves it with uvloop: bind, then ``READY=1`` to systemd; on SIGTERM or
SIGINT ``STOPPING=1``, stop listening, run ``on_shutdown`` (sockets close with 1001), let
in-flight requests finish for ``server.shutdown_timeout_s``, clean up, exit 0 — all within
``shutdown_timeout_s + 0.4`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import signal
import time
from pathlib import Path
from typing import Annotated, Final

from aiohttp import web
from aiohttp.typedefs import Handler
from msgspec import Meta

from faced import __version__
from faced.api import (
    analyze,
    analyze_stream,
    display,
    follow,
    openapi,
    openface,
    presets,
    speaker,
    tracking,
)
from faced.api.access import ACCESS_KEY, AccessPolicy
from faced.api.codec import MAX_BODY_KEY, Query, parse_query, respond
from faced.api.health import HEALTH_KEY, Health
from faced.api.middlewares import (
    CONNECT_SOURCES_KEY,
    Guard,
    make_middleware,
    make_response_hook,
    remote_viewer_sources,
)
from faced.api.ratelimit import ClientAddress, RateLimiter, parse_networks
from faced.config import EX_CONFIG, Config, ConfigError
from faced.devices.audio import check_sink
from faced.devices.camera import check_source
from faced.schemas.health import Health as HealthReport
from faced.system import NOTIFIER_KEY, setup_logging, watchdog_ctx

log = logging.getLogger(__name__)

WEB_DIR: Final = Path(__file__).resolve().parent / "web"
STATIC_DIR: Final = WEB_DIR / "static"
# Slack for the JSON around a base64 audio chunk ({"data": "…", "seq": N}).
_JSON_ENVELOPE_BYTES: Final = 64 * 1024

CONFIG_KEY: Final = web.AppKey("config", Config)
STARTED_KEY: Final = web.AppKey("started_monotonic", float)
GUARD_KEY: Final = web.AppKey("guard", Guard)


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


def create_app(config: Config) -> web.Application:
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
    app = web.Application(
        middlewares=[make_middleware(guard)],
        client_max_size=client_max_size(config),
    )
    app[CONFIG_KEY] = config
    app[STARTED_KEY] = time.monotonic()
    app[GUARD_KEY] = guard
    app[ACCESS_KEY] = policy
    app[MAX_BODY_KEY] = config.server.max_body_bytes
    health = app[HEALTH_KEY] = Health()
    app.on_response_prepare.append(make_response_hook(guard))

    # Components in flow order; aiohttp tears them down in reverse.
    app.cleanup_ctx.append(watchdog_ctx)
    health.add_component(
        "api",
        lambda: {
            "status": "ok",
            "auth": guard.api_key is not None,
            "rate_limited": guard.limiter.rejected,
        },
    )
    openface.setup(app)
    tracking.setup(app)  # camera → tracking → presence on the Open Face hub
    follow.setup(app)  # tracking → gaze follow / mirror → the face state
    presets.setup(app)
    analyze.setup(app)
    analyze_stream.setup(app)
    display.setup(app)  # hub → display policy → the attached display
    speaker.setup(app)  # /api/audio and the hub → the speaker → amplitude on the hub

    add_routes(app)
    openapi.setup(app)  # the document of every route above, and the API browser
    return app


def add_routes(app: web.Application) -> None:
    """Health and the pages, each described where it is added."""
    router = app.router
    openapi.describe(
        app,
        router.add_get("/health", health_handler),
        openapi.Operation(
            summary="Health: status, version, uptime, model, components",
            tags=("meta",),
            response=HealthReport,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/health", health_handler),
        openapi.Operation(
            summary="Health (alias of /health)", tags=("meta",), response=HealthReport
        ),
    )
    html = {"text/html": {"type": "string"}}
    pages = ("pages",)
    openapi.describe(
        app,
        router.add_get("/", viewer_page),
        openapi.Operation(
            summary="The viewer page (the face)",
            tags=pages,
            query=ViewerPageQuery,
            response_content=html,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/dashboard", _page("dashboard.html")),
        openapi.Operation(summary="The dashboard page", tags=pages, response_content=html),
    )
    openapi.describe(
        app,
        router.add_get("/static/{name:.+}", static_file),
        openapi.Operation(
            summary="Static files of the viewer, dashboard and API browser",
            tags=pages,
            errors=(404,),
        ),
    )


async def health_handler(request: web.Request) -> web.StreamResponse:
    app = request.app
    health = app[HEALTH_KEY]
    components = health.components()
    failing = sorted(name for name, report in components.items() if report["status"] == "error")
    body: dict[str, object] = {
        "status": "degraded" if failing else "ok",
        "ok": True,  # the process answers; "status" says whether every component does
        "version": __version__,
        "uptime_s": round(time.monotonic() - app[STARTED_KEY], 1),
        "components": components,
    }
    for key, value in health.summary().items():
        body.setdefault(key, value)  # components add facts, they cannot rewrite the core's
    return respond(request, body)


def _page(name: str) -> Handler:
    path = WEB_DIR / name

    async def page(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    page.__name__ = f"page_{path.stem}"
    return page


_viewer_file = _page("index.html")


class ViewerPageQuery(Query, frozen=True):
    server: Annotated[
        str | None, Meta(description="Another daemon's viewer socket: ws://host:port/ws/viewer")
    ] = None


async def viewer_page(request: web.Request) -> web.StreamResponse:
    """The viewer; ``?server=ws://host:port/ws/viewer`` makes this one response's CSP allow
    that daemon's socket and origin (faced.api.middlewares.remote_viewer_sources)."""
    server = parse_query(request, ViewerPageQuery).server
    if server:
        sources = remote_viewer_sources(server)
        if sources is not None:
            request[CONNECT_SOURCES_KEY] = sources
    return await _viewer_file(request)


_STATIC_NAME: Final = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]*/)*[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _static_path(name: str) -> Path | None:
    """The file under STATIC_DIR that ``name`` names, if any (runs in a worker thread)."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        return None
    return path


async def static_file(request: web.Request) -> web.StreamResponse:
    # Our own handler rather than add_static: a missing file must be a JSON 404 raised
    # here, not an empty 404 that FileResponse decides on after the middlewares ran.
    name = request.match_info["name"]
    path = await asyncio.to_thread(_static_path, name) if _STATIC_NAME.fullmatch(name) else None
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


# --- running the daemon ------------------------------------------------------------------

SHUTDOWN_SLACK_S: Final = 0.4  # on_shutdown + cleanup after in-flight requests had their time


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status."""
    setup_logging(config.logging)
    try:
        import uvloop  # noqa: PLC0415

        loop_factory = uvloop.new_event_loop
    except ImportError:  # uvloop has no wheels for every platform; asyncio's loop works
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve(config))


async def serve(config: Config) -> int:
    try:
        app = create_app(config)
    except ConfigError as exc:
        log.error("%s", exc)
        return EX_CONFIG
    runner = web.AppRunner(
        app,
        access_log=None,  # faced.api.middlewares logs one line per request
        handle_signals=False,
        shutdown_timeout=config.server.shutdown_timeout_s,
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
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        await runner.cleanup()
        return 1

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
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
    await stop.wait()

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
    return 0


__all__ = [
    "CONFIG_KEY",
    "GUARD_KEY",
    "STARTED_KEY",
    "check_supported",
    "client_max_size",
    "create_app",
    "run",
    "serve",
]
