"""The system API: what the box is, its components and switches, its settings, a restart.

Owns the routes (all in the default ``key`` access class, faced.api.access):

* ``GET /api/about`` — version, uptime, host, OS, board, Python, models, CPU temperature.
* ``GET /api/components``, ``POST /api/components/{name}`` ``{"enabled": bool}``.
* ``GET /api/system/config``, ``PATCH /api/system/config`` (a partial document).
* ``POST /api/system/restart`` ``{"confirm": true}``.

Does not own: the host's facts (faced.system_info), the components' registry and switches
(faced.components), the settings' layer (faced.settings), or how the process restarts
(faced.system). Open Face's ``/api/config`` (the face pack) is faced.api.presets'.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from pathlib import Path
from typing import Any, Final

import msgspec
from aiohttp import web

from faced import __version__
from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.api.errors import ApiError
from faced.keys import (
    COMPONENTS_KEY,
    CONFIG_KEY,
    HEALTH_KEY,
    LIFECYCLE_KEY,
    SETTINGS_KEY,
    STARTED_KEY,
    SYSTEM_ROOT_KEY,
)
from faced.schemas.health import ModelHealth
from faced.schemas.system import (
    About,
    Component,
    Components,
    ComponentToggle,
    ConfigReport,
    Restarting,
    RestartRequest,
)
from faced.system_info import host_facts

MAX_BODY_BYTES: Final = 64 * 1024
_RESTART_DELAY_S: Final = 0.1  # the answer leaves before the shutdown begins


async def get_about(request: web.Request) -> web.StreamResponse:
    app = request.app
    root: Path = app.get(SYSTEM_ROOT_KEY, Path("/"))
    facts = await asyncio.to_thread(host_facts, root)
    uptime = time.monotonic() - app[STARTED_KEY]
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=uptime)
    vision = app[CONFIG_KEY].vision
    model = app[HEALTH_KEY].summary().get("model")
    return respond(
        request,
        About(
            version=__version__,
            uptime_s=round(uptime, 1),
            started_at=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
            pid=os.getpid(),
            hostname=facts.hostname,
            platform=facts.platform,
            machine=facts.machine,
            os=facts.os,
            board=facts.board,
            python=facts.python,
            backend=f"{vision.backend}/{vision.precision}",
            model=msgspec.convert(model, ModelHealth) if model else None,
            cpu_temperature_c=facts.cpu_temperature_c,
        ),
    )


async def get_components(request: web.Request) -> web.StreamResponse:
    return respond(request, Components(components=request.app[COMPONENTS_KEY].entries()))


async def post_component(request: web.Request) -> web.StreamResponse:
    components = request.app[COMPONENTS_KEY]
    name = request.match_info["name"]
    components.entry(name)  # 404 before the body is read
    toggle = await read_body(
        request, ComponentToggle, max_bytes=MAX_BODY_BYTES, name_the_field=True
    )
    assert toggle is not None  # read_body refuses an empty body unless allow_empty
    return respond(request, await components.switch(name, toggle.enabled))


async def get_config(request: web.Request) -> web.StreamResponse:
    return respond(request, request.app[SETTINGS_KEY].report())


async def patch_config(request: web.Request) -> web.StreamResponse:
    patch = await read_body(request, dict[str, Any], max_bytes=MAX_BODY_BYTES)
    assert patch is not None  # read_body refuses an empty body unless allow_empty
    return respond(request, await request.app[SETTINGS_KEY].patch(patch))


async def post_restart(request: web.Request) -> web.StreamResponse:
    body = await read_body(request, RestartRequest, max_bytes=1024, name_the_field=True)
    if body is None or not body.confirm:
        raise ApiError(400, 'a restart needs {"confirm": true}', extra={"field": "confirm"})
    lifecycle = request.app[LIFECYCLE_KEY]
    asyncio.get_running_loop().call_later(_RESTART_DELAY_S, lifecycle.request_restart)
    return respond(request, Restarting(restarting=True, how=lifecycle.how()), status=202)


def add_routes(app: web.Application) -> None:
    tags = ("system",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/about", get_about),
        openapi.Operation(
            summary="What this box is: version, uptime, host, OS, board, models, temperature",
            tags=tags,
            response=About,
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/components", get_components),
        openapi.Operation(
            summary="Every component: enabled, status (ok / error / off), last error, figures",
            tags=tags,
            response=Components,
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/components/{name}", post_component),
        openapi.Operation(
            summary="Switch a component on or off at run time (persisted)",
            description="Switchable: tracking, follow, display (its policy), speaker "
            "(mute). 404: no such component; 409: it cannot be switched at run time, or "
            "not now (tracking never started).",
            tags=tags,
            request=ComponentToggle,
            response=Component,
            errors=(400, 404, 409, 507),
        ),
    )
    openapi.describe(
        app,
        router.add_get("/api/system/config", get_config),
        openapi.Operation(
            summary="The effective configuration (secrets masked) and its persisted layer",
            tags=tags,
            response=ConfigReport,
        ),
    )
    openapi.describe(
        app,
        router.add_patch("/api/system/config", patch_config),
        openapi.Operation(
            summary="Change settings: a partial document, validated, persisted, applied",
            description="Merged into the persisted layer (null removes a key from it), "
            "validated like the config file (400 names the key, the value and what is "
            "expected; nothing is applied or written), written atomically to the state "
            "directory, applied live where the component can take it; the answer lists "
            "the keys that need a restart.",
            tags=tags,
            request=dict[str, Any],
            response=ConfigReport,
            errors=(400, 507),
        ),
    )
    openapi.describe(
        app,
        router.add_post("/api/system/restart", post_restart),
        openapi.Operation(
            summary='Restart the daemon cleanly ({"confirm": true})',
            description="Under systemd the process exits for the unit to start it again; "
            "started by hand it re-executes itself with the same command line.",
            tags=tags,
            request=RestartRequest,
            response=Restarting,
            status=202,
        ),
    )


__all__ = ["add_routes"]
