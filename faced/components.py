"""The daemon's components as the system API shows them, and the switches of those that can
change at run time (GET/POST /api/components).

Owns: the list of components (``NAMES``, in the order the data flows, then any other the
health registry knows), each one's entry made from its /health report (status, last error,
key figures), and the run-time switches: ``add_toggle(name, enabled=…, switch=…)`` in the
composition root is all a component needs to be switchable. A switch that is not a setting
of its own (tracking) persists in ``<state dir>/components.json`` and is restored at start;
the follow and display switches are settings (``follow.mode``, ``display.policy``) and
persist through faced.settings; the speaker's mute is the volume's (faced.voice). Does not
own: the health reports (each component's, faced.api.health) or the routes
(faced.api.system). Why apart: one place says which components exist and which can be
switched, whoever builds them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, get_args

import msgspec
from aiohttp import web

from faced.api.errors import ApiError
from faced.api.health import Health
from faced.schemas.system import Component, ComponentName
from faced.state import StateFile

log = logging.getLogger(__name__)

NAMES: Final = get_args(ComponentName)
"""In /api/components' order: the data flow, then what serves it."""
STATE_FILE: Final = "components.json"
_NOT_FIGURES: Final = frozenset({"status", "error", "enabled"})


class Switches(msgspec.Struct, kw_only=True):
    """What ``components.json`` keeps: the switches set through the API."""

    enabled: dict[str, bool] = msgspec.field(default_factory=dict)


@dataclass
class Toggle:
    enabled: Callable[[], bool]
    switch: Callable[[bool], Awaitable[object] | None]
    unavailable: Callable[[], str | None]
    """Why it cannot be switched now (None: it can); the answer is a 409."""
    persist: bool


def _never() -> str | None:
    return None


class Components:
    def __init__(self, health: Health, directory: Path) -> None:
        self._health = health
        self._toggles: dict[str, Toggle] = {}
        self.state_file = StateFile(directory, STATE_FILE, Switches, fallback="no switches")
        self._saved = Switches()

    def add_toggle(
        self,
        name: str,
        *,
        enabled: Callable[[], bool],
        switch: Callable[[bool], Awaitable[object] | None],
        unavailable: Callable[[], str | None] = _never,
        persist: bool = True,
    ) -> None:
        """Make ``name`` switchable at run time. ``persist`` False: ``switch`` persists the
        change itself (a setting, the volume); True: components.json keeps it."""
        self._toggles[name] = Toggle(enabled, switch, unavailable, persist)

    def entries(self) -> list[Component]:
        reports = self._health.components()
        names = [*NAMES, *sorted(set(reports) - set(NAMES))]
        return [self._entry(name, reports.get(name)) for name in names]

    def entry(self, name: str) -> Component:
        if name not in NAMES and name not in self._health.components():
            raise ApiError(404, f"no component {name!r}", extra={"allowed": list(NAMES)})
        return self._entry(name, self._health.components().get(name))

    def _entry(self, name: str, report: dict[str, Any] | None) -> Component:
        toggle = self._toggles.get(name)
        if report is None:
            return Component(
                name=name,
                enabled=False,
                status="off",
                toggle=False,
                figures={"reason": "not part of this daemon"},
            )
        status = str(report.get("status", "ok"))
        enabled = toggle.enabled() if toggle is not None else status != "off"
        error = report.get("error") or report.get("last_error")
        return Component(
            name=name,
            enabled=enabled,
            status=status,
            toggle=toggle is not None,
            error=str(error) if error else None,
            figures={k: v for k, v in report.items() if k not in _NOT_FIGURES},
        )

    async def switch(self, name: str, enabled: bool) -> Component:
        self.entry(name)  # 404 for a name that is no component
        toggle = self._toggles.get(name)
        if toggle is None:
            raise ApiError(
                409,
                f"{name} cannot be switched at run time; change its settings "
                "(PATCH /api/system/config) and restart",
                extra={"allowed": sorted(self._toggles)},
            )
        if (reason := toggle.unavailable()) is not None:
            raise ApiError(409, f"{name} cannot be switched now: {reason}")
        if toggle.persist:
            saved = Switches(enabled={**self._saved.enabled, name: enabled})
            await self.state_file.save(saved, f"the {name} switch")
            self._saved = saved
        await _call(toggle.switch, enabled)
        log.info("%s switched %s", name, "on" if enabled else "off", extra={"component": name})
        return self.entry(name)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context, after every component it switches: the saved switches again."""
        del app
        saved = await self.state_file.load()
        if saved is not None:
            self._saved = saved
            for name, enabled in saved.enabled.items():
                toggle = self._toggles.get(name)
                if toggle is None or not toggle.persist or toggle.unavailable() is not None:
                    continue
                if toggle.enabled() != enabled:
                    await _call(toggle.switch, enabled)
                    log.info("%s switched %s (saved)", name, "on" if enabled else "off")
        yield


async def _call(switch: Callable[[bool], Awaitable[object] | None], enabled: bool) -> None:
    result = switch(enabled)
    if inspect.isawaitable(result):
        await result


__all__ = ["NAMES", "Components", "Switches"]
