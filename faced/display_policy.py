"""The display policy: presence and agent activity decide whether the display is on, dim or off.

Owns: ``DisplayPolicy`` and ``DisplayService``, the component that applies it to the
display. Does not own: the display device and its drivers (faced.devices.display), or the
routes (faced.api.display). Why apart from the device: when to dim is the face's business
(who is there, what the agents do), how to dim is the hardware's.

``DisplayPolicy`` is pure (injectable clocks, no I/O): it reads what the Open Face hub
publishes (faced.hub observers) — presence events from live tracking (faced.live), the
face's state, audio sequences and chunks — and every agent update
(``OpenFace.agent_listeners``, faced.openface), and says which level the display should
be at:

* quiet time: 0 while a person is present, else the time since the last presence event
  (arrived, moved, left) or agent activity; at startup, the time since startup;
* quiet >= ``idle_off_after_s`` → off; >= ``idle_dim_after_s`` → dim; else on (0 disables
  a step);
* the face ``sleeping`` → at most dim;
* inside the ``night`` window (local time) → at most ``night_level``.

Agent activity is an agent's update (POST /api/state, /api/speak, the agent socket) or an
audio sequence, chunk or end. The face's own timers (idle timeout, auto-sleep) and gaze
follow (camera-caused updates) are no agent's word and keep nothing on.

``DisplayService`` applies the policy to the display (faced.devices.display) whenever the
level changes, from one named task. A manual change (PUT /api/display) holds until the
policy's level next changes — a person arrives after the display dimmed, a timer step,
the face falls asleep or wakes, the night window starts or ends — and then the policy
applies its level again. A failed change is retried while the policy is in charge (after
``RETRY_FIRST_S``, doubling up to ``RETRY_MAX_S``), and a level that held is applied again
every ``display.reapply_s``: the display is not only faced's (a kiosk compositor that
restarts turns its output back on).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, cast

from aiohttp import web

from faced.config import DisplayConfig
from faced.devices.display import Display, DisplayError, open_display
from faced.devices.retry import Backoff
from faced.openface import OpenFace, supervised
from faced.schemas.display import DisplayStatus, Driver, Level
from faced.schemas.face_state import (
    AudioDoneMessage,
    AudioMessage,
    AudioSeqMessage,
    StateMessage,
)
from faced.schemas.tracking import PresenceMessage

log = logging.getLogger(__name__)

DAY_S: Final = 24 * 3600
RETRY_FIRST_S: Final = 1.0
"""The first retry of a failed change comes soon: on the appliance faced is up before the
kiosk compositor it switches the screen through, which follows within seconds."""
RETRY_MAX_S: Final = 15.0
# Re-evaluate at least this often: the night window follows the wall clock, which may jump
# (NTP, daylight saving) while the monotonic deadline does not.
MAX_WAIT_S: Final = 60.0
_ORDER: Final[dict[Level, int]] = {"off": 0, "dim": 1, "on": 2}


def local_seconds() -> float:
    """Seconds since local midnight."""
    now = datetime.datetime.now()
    return now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6


def parse_window(text: str) -> tuple[int, int] | None:
    """``"23:00-07:00"`` → (start, end) in seconds after midnight; None for ``""``. The
    config has already checked the form (faced.config)."""
    if not text:
        return None
    start, end = text.split("-")
    return _seconds(start), _seconds(end)


def _seconds(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60


def _lowest(a: Level, b: Level) -> Level:
    return a if _ORDER[a] <= _ORDER[b] else b


class DisplayPolicy:
    def __init__(
        self,
        *,
        dim_after_s: float,
        off_after_s: float,
        night: tuple[int, int] | None = None,
        night_level: Level = "off",
        clock: Callable[[], float] = time.monotonic,
        local_time: Callable[[], float] = local_seconds,
    ) -> None:
        self.dim_after_s = dim_after_s
        self.off_after_s = off_after_s
        self.night = night
        self.night_level = night_level
        self.clock = clock
        self._local_time = local_time
        self.present = False
        self.sleeping = False
        self.last_active = clock()

    @classmethod
    def from_config(cls, config: DisplayConfig, **clocks: Any) -> DisplayPolicy:
        return cls(
            dim_after_s=config.idle_dim_after_s,
            off_after_s=config.idle_off_after_s,
            night=parse_window(config.night),
            night_level=config.night_level,
            **clocks,
        )

    # --- what happened ------------------------------------------------------------------

    def observe(self, message: object) -> bool:
        """Take note of one message the hub published; False when it is none of ours."""
        if isinstance(message, PresenceMessage):
            self.present = message.present
            self.last_active = self.clock()
        elif isinstance(message, StateMessage):
            self.sleeping = message.state == "sleeping"
        elif isinstance(message, (AudioSeqMessage, AudioMessage, AudioDoneMessage)):
            self.last_active = self.clock()
        else:
            return False
        return True

    def agent_wrote(self) -> None:
        """An agent changed the face."""
        self.last_active = self.clock()

    # --- what it calls for --------------------------------------------------------------

    def quiet_s(self) -> float:
        return 0.0 if self.present else max(0.0, self.clock() - self.last_active)

    def in_night(self) -> bool:
        if self.night is None:
            return False
        start, end = self.night
        now = self._local_time() % DAY_S
        return start <= now < end if start < end else now >= start or now < end

    def level(self) -> Level:
        quiet = self.quiet_s()
        level: Level = "on"
        if self.off_after_s > 0 and quiet >= self.off_after_s:
            level = "off"
        elif self.dim_after_s > 0 and quiet >= self.dim_after_s:
            level = "dim"
        if self.sleeping:
            level = _lowest(level, "dim")
        if self.in_night():
            level = _lowest(level, self.night_level)
        return level

    def next_deadline(self) -> float | None:
        """The clock time at which ``level`` may next change by itself, or None."""
        now = self.clock()
        deadlines: list[float] = []
        if not self.present:
            for after in (self.dim_after_s, self.off_after_s):
                at = self.last_active + after
                if after > 0 and at > now:
                    deadlines.append(at)
        if self.night is not None:
            local = self._local_time() % DAY_S
            for boundary in self.night:
                deadlines.append(now + ((boundary - local) % DAY_S or DAY_S))
        return min(deadlines) if deadlines else None


class DisplayService:
    """The policy applied to a display, and the manual changes of the API."""

    def __init__(
        self, config: DisplayConfig, policy: DisplayPolicy | None, openface: OpenFace
    ) -> None:
        self.config = config
        self.policy = policy
        self._openface = openface
        self.display: Display | None = None
        """Set once the component has started (``lifetime``)."""
        self.manual = False
        self.level: Level | None = None
        """The policy level last acted on (applied, or held back by a manual change)."""
        self._retry_at: float | None = None
        self._retry = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        self._reapply_at: float | None = None
        self._wake = asyncio.Event()
        # One change at a time, so a policy step decided before a client's change cannot
        # land after it.
        self._changing = asyncio.Lock()
        self._planned_present = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: DisplayConfig, openface: OpenFace) -> DisplayService:
        policy = DisplayPolicy.from_config(config) if config.policy else None
        return cls(config, policy, openface)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: opens the display (``auto`` resolved then), hands the policy
        the hub's messages and the agents' updates, and follows it from one named,
        supervised task."""
        del app
        self.display = await open_display(self.config)
        if self.policy is not None:
            self._start_policy()
        try:
            yield
        finally:
            await self._stop_policy()

    def _start_policy(self) -> None:
        openface = self._openface
        openface.hub.observers.append(self.observe)
        openface.agent_listeners.append(self.agent_wrote)
        self._task = asyncio.create_task(supervised("display policy", self.run), name="display")

    async def _stop_policy(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        openface = self._openface
        openface.hub.observers.remove(self.observe)
        openface.agent_listeners.remove(self.agent_wrote)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    @property
    def policy_enabled(self) -> bool:
        return self.policy is not None

    async def set_policy_enabled(self, enabled: bool) -> None:
        """Switch the policy on or off at run time (the system API). Off: the display stays
        as it is until PUT /api/display; on: a fresh policy (nobody seen yet, so the idle
        steps count from now) takes over at once."""
        if enabled == self.policy_enabled or self.display is None:
            return
        if enabled:
            self.policy = DisplayPolicy.from_config(self.config)
            self.level = None
            self.manual = False
            self._start_policy()
        else:
            await self._stop_policy()
            self.policy = None
            self.level = None
            self._retry_at = self._reapply_at = None
        log.info("display policy %s", "on" if enabled else "off")

    def observe(self, message: object) -> None:
        """Hub observer: note the message; wake the task when the level changes."""
        policy = self.policy
        if policy is None:
            return
        if policy.observe(message):
            self._check(policy)

    def agent_wrote(self, update: object) -> None:
        """OpenFace agent listener: an agent changed the face."""
        if self.policy is not None:
            self.policy.agent_wrote()
            self._check(self.policy)

    def _check(self, policy: DisplayPolicy) -> None:
        # Wake the task when the level changed, or when the person it planned around has
        # left (that starts the idle count: the next step is now earlier than planned).
        # Activity only moves steps later: the task finds nothing due when it wakes as
        # planned, and plans again.
        if policy.level() != self.level or (self._planned_present and not policy.present):
            self._wake.set()

    async def run(self) -> None:
        """Follow the policy until cancelled."""
        policy = self.policy
        assert policy is not None and self.display is not None
        while True:
            self._wake.clear()
            await self._follow(policy, self.display)
            deadlines = [policy.clock() + MAX_WAIT_S]
            if (deadline := policy.next_deadline()) is not None:
                deadlines.append(deadline)
            for at in (self._retry_at, self._reapply_at):
                if at is not None:
                    deadlines.append(at)
            self._planned_present = policy.present
            delay = max(0.0, min(deadlines) - policy.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _follow(self, policy: DisplayPolicy, display: Display) -> None:
        level = policy.level()
        now = policy.clock()
        retry = self._retry_at is not None and now >= self._retry_at
        reapply = self._reapply_at is not None and now >= self._reapply_at and not self.manual
        if level == self.level and not (retry or reapply):
            return
        if level != self.level:
            if self.manual:
                log.info("display: the policy takes over again (%s)", level)
            self.manual = False
            log.info("display %s", level, extra={"quiet_s": round(policy.quiet_s(), 1)})
        self.level = level
        async with self._changing:
            if self.manual:  # also when a client's change came in while we waited
                return
            try:
                await self._apply(display, level)
            except DisplayError:
                # The display logged the failure and reports it; try again, less and less often.
                self._retry_at = policy.clock() + self._retry.next()
                self._reapply_at = None
            else:
                self._retry_at = None
                self._retry.reset()
                every = self.config.reapply_s
                self._reapply_at = policy.clock() + every if every > 0 else None

    async def _apply(self, display: Display, level: Level) -> None:
        if level == "off":
            await display.set(power=False)
            return
        brightness = self.config.brightness if level == "on" else self.config.dim_brightness
        await display.set(power=True, brightness=brightness if display.has_brightness else None)

    async def set_manual(self, *, power: bool | None, brightness: int | None) -> None:
        """A client's change; it holds until the policy's level next changes."""
        display = self.display
        assert display is not None
        display.check(brightness=brightness)  # refused: nothing changes, not even manual
        if self.policy is not None:
            self.manual = True
            self._retry_at = self._reapply_at = None
        async with self._changing:
            await display.set(power=power, brightness=brightness)

    def status(self) -> DisplayStatus:
        display = self.display
        assert display is not None
        return DisplayStatus(
            driver=cast(Driver, display.driver),  # auto was resolved at startup
            power=display.power,
            brightness=display.brightness,
            brightness_control=display.has_brightness,
            policy=self.policy.level() if self.policy is not None else None,
            manual=self.manual,
            error=display.error,
        )

    def report(self) -> dict[str, Any]:
        """The /health entry."""
        if self.display is None:
            return {"status": "off", "reason": "not started"}
        report = self.display.report()
        report["policy"] = self.policy.level() if self.policy is not None else None
        report["manual"] = self.manual
        return report


__all__ = ["DisplayPolicy", "DisplayService", "local_seconds", "parse_window"]
