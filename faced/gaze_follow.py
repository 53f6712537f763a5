"""Gaze follow and mirror in the daemon: tracking results in, face-state updates out.

Owns: the component (``FollowService``) that hands every tracking result (faced.live; with
``perception.follow_on_attention`` only while the person looks at the screen,
faced.perception) and every agent update (``OpenFace.agent_listeners``) to the ``Follower``
(faced.face.follow), and one named, supervised task that asks the follower for an update at most
``follow.rate_hz`` times a second while there is someone to follow (or fields to return to
rest), and sleeps otherwise. Does not own: the mapping from a face to the state (the
``Follower``), the routes (faced.api.follow), or the face: updates go through
``OpenFace.apply_camera`` — the face model and hub every viewer reads — so viewers see
``lookAt``, winks, ``amplitude`` and ``emotion`` change, never face data. Why apart from
the ``Follower``: the task, its pacing and its wiring are the daemon's; the mapping stays
pure and is tested without one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import msgspec
from aiohttp import web

from faced.config import Config
from faced.face import InvalidUpdate
from faced.face.follow import Follower
from faced.live import LiveService
from faced.openface import OpenFace, supervised
from faced.schemas.analysis import Analysis
from faced.schemas.follow import FollowStatus, FollowUpdate

log = logging.getLogger(__name__)


class FollowService:
    """The follower, its task, and what it has done."""

    def __init__(self, config: Config, openface: OpenFace, live: LiveService) -> None:
        follow = config.follow
        self.follower = Follower(
            follow.mode, hold_s=follow.hold_s, frames_mirrored=config.camera.mirror
        )
        self.interval_s = 1.0 / follow.rate_hz
        self.on_attention = config.perception.follow_on_attention
        self.openface = openface
        self._live = live
        self.tracking = False
        self.updates = 0
        self._wake = asyncio.Event()

    def observe(self, result: Analysis) -> None:
        """A tracking listener (called on the loop for every result). With
        ``perception.follow_on_attention`` a person who does not look at the screen is not
        followed: the follower stops seeing them and the face eases back to rest."""
        if self.on_attention and result.face_found:
            live = self._live.live
            # Perception runs after the listeners: this is the previous frame's attention.
            if live is None or not live.perception.attention:
                return
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
        return {
            "status": "ok",
            "mode": self.follower.mode,
            "updates": self.updates,
            "on_attention": self.on_attention,
        }

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

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context, after live tracking's: listens to its results and to the
        agents' updates, and runs ``run`` as one named, supervised task."""
        del app
        live = self._live.live  # started by live tracking's lifetime, which runs before
        if live is None:
            yield
            return
        self.tracking = True
        live.listeners.append(self.observe)
        # Mirror mode copies blinks, jaw, smile and brows: it reads the blendshapes.
        live.blendshapes.watch("mirror", lambda: self.follower.mode == "mirror")
        openface = self.openface
        openface.agent_listeners.append(self.follower.agent_wrote)
        task = openface.spawn(supervised("gaze follow", self.run), "gaze-follow")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            live.listeners.remove(self.observe)
            live.blendshapes.unwatch("mirror")
            openface.agent_listeners.remove(self.follower.agent_wrote)


__all__ = ["FollowService"]
