"""Gaze follow and mirror in the daemon: tracking results in, face-state updates out.

Owner: gaze follow (issue 6). ``setup(app)`` registers the component (a ``cleanup_ctx``
after live tracking's, faced.api.tracking): it listens to every tracking result, tells the
``Follower`` (faced.face.follow) of every agent update (``OpenFace.agent_listeners``), and
runs one named, supervised task that asks the follower for an update at most
``follow.rate_hz`` times a second while there is someone to follow (or fields to return to
rest), and sleeps otherwise. Updates go through ``OpenFace.apply_camera`` — the face model
and hub every viewer reads — so viewers see ``lookAt``, winks, ``amplitude`` and
``emotion`` change, never face data.

Routes (access class "key", faced.api.access): ``GET /api/follow`` — the mode, hold time,
whether tracking runs, what an agent holds now; ``PUT /api/follow`` — change the mode
and/or the hold time until restart (``[follow]`` in the config sets them at start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Final

import msgspec
from aiohttp import web

from faced.api import openapi
from faced.api.codec import read_body, respond
from faced.api.face_service import OPENFACE_KEY, OpenFace, supervised
from faced.api.health import HEALTH_KEY
from faced.api.tracking import CAMERA_KEY
from faced.config import Config
from faced.face import InvalidUpdate
from faced.face.follow import Follower
from faced.schemas.analysis import Analysis
from faced.schemas.follow import FollowStatus, FollowUpdate

log = logging.getLogger(__name__)

_MAX_BODY_BYTES: Final = 1024


class FollowService:
    """The follower, its task, and what it has done."""

    def __init__(self, config: Config, openface: OpenFace) -> None:
        follow = config.follow
        self.follower = Follower(
            follow.mode, hold_s=follow.hold_s, frames_mirrored=config.camera.mirror
        )
        self.interval_s = 1.0 / follow.rate_hz
        self.openface = openface
        self.tracking = False
        self.updates = 0
        self._wake = asyncio.Event()

    def observe(self, result: Analysis) -> None:
        """A tracking listener (called on the loop for every result)."""
        self.follower.observe(result)
        if self.follower.mode != "off" and result.face_found:
            self._wake.set()

    def change(self, update: FollowUpdate) -> None:
        follower = self.follower
        if update.mode is not msgspec.UNSET and update.mode != follower.mode:
            log.info("gaze follow mode %s", update.mode, extra={"mode": update.mode})
            follower.mode = update.mode
        if update.hold_s is not msgspec.UNSET:
            follower.hold_s = update.hold_s
        self._wake.set()  # the new mode may have fields to return to rest

    def status(self) -> FollowStatus:
        follower = self.follower
        return FollowStatus(
            mode=follower.mode,
            hold_s=follower.hold_s,
            tracking=self.tracking,
            holding=follower.holding(),
        )

    def report(self) -> dict[str, object]:
        if not self.tracking:
            return {"status": "off", "mode": self.follower.mode, "reason": "no live tracking"}
        return {"status": "ok", "mode": self.follower.mode, "updates": self.updates}

    async def run(self) -> None:
        openface = self.openface
        follower = self.follower
        while True:
            if not follower.driving:
                self._wake.clear()
                await self._wake.wait()  # a face seen, or the mode changed
                continue
            update = follower.step(openface.model.state, audio_playing=openface.audio_playing)
            if update is not None:
                try:
                    openface.apply_camera(update)
                except InvalidUpdate as exc:  # a NaN from a broken model: skip the frame
                    log.warning("gaze follow update refused: %s", exc)
                else:
                    self.updates += 1
            await asyncio.sleep(self.interval_s)


FOLLOW_KEY: Final = web.AppKey("follow", FollowService)


async def _component(app: web.Application) -> AsyncIterator[None]:
    service = app[FOLLOW_KEY]
    live = app[CAMERA_KEY].live  # started by tracking's cleanup_ctx, registered before ours
    if live is None:
        yield
        return
    service.tracking = True
    live.listeners.append(service.observe)
    openface = service.openface
    openface.agent_listeners.append(service.follower.agent_wrote)
    task = openface.spawn(supervised("gaze follow", service.run), "gaze-follow")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        live.listeners.remove(service.observe)
        openface.agent_listeners.remove(service.follower.agent_wrote)


async def get_follow(request: web.Request) -> web.StreamResponse:
    return respond(request, request.app[FOLLOW_KEY].status())


async def put_follow(request: web.Request) -> web.StreamResponse:
    service = request.app[FOLLOW_KEY]
    update = await read_body(request, FollowUpdate, max_bytes=_MAX_BODY_BYTES, name_the_field=True)
    assert update is not None  # read_body refuses an empty body unless allow_empty
    service.change(update)
    return respond(request, service.status())


def setup(app: web.Application) -> None:
    """Register the gaze-follow component and routes (after faced.api.tracking's setup)."""
    from faced.app import CONFIG_KEY  # noqa: PLC0415  (faced.app imports this module)

    service = app[FOLLOW_KEY] = FollowService(app[CONFIG_KEY], app[OPENFACE_KEY])
    app[HEALTH_KEY].add_component("follow", service.report)
    app.cleanup_ctx.append(_component)
    tags = ("viewer",)
    router = app.router
    openapi.describe(
        app,
        router.add_get("/api/follow", get_follow),
        openapi.Operation(
            summary="Gaze follow and mirror: the mode, the hold time, what an agent holds",
            tags=tags,
            response=FollowStatus,
        ),
    )
    openapi.describe(
        app,
        router.add_put("/api/follow", put_follow),
        openapi.Operation(
            summary="Change the gaze-follow mode and/or hold time (until restart)",
            description="Modes: off (the camera changes nothing), follow (lookAt looks at "
            "the person), mirror (follow, and the face copies blinks, jaw, smile, brows). "
            "Viewers see ordinary state fields; leaving a mode returns the fields it set "
            "to rest.",
            tags=tags,
            request=FollowUpdate,
            response=FollowStatus,
            errors=(400,),
        ),
    )


__all__ = ["FOLLOW_KEY", "FollowService", "setup"]
