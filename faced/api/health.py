"""Health: the public /health report, assembled from what each component says of itself.

Owns: the registry components report into. Components register a callable at startup;
/health calls them (they must be cheap and non-blocking) and merges: ``summary`` callables
add top-level keys (viewers, agents, state, …); ``component`` callables add an entry under
``components`` with at least ``{"status": "ok" | "error" | "off", …}``. Does not own the
report's shape: faced.schemas.health, which summaries must keep to (tests/api/test_openapi.py
decodes /health strictly).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from faced import __version__
from faced.api import openapi
from faced.api.codec import respond
from faced.keys import HEALTH_KEY, STARTED_KEY
from faced.schemas.health import Health as HealthReport

log = logging.getLogger(__name__)

Report = dict[str, Any]


class Health:
    def __init__(self) -> None:
        self._summaries: list[Callable[[], Report]] = []
        self._components: dict[str, Callable[[], Report]] = {}

    def add_summary(self, report: Callable[[], Report]) -> None:
        self._summaries.append(report)

    def add_component(self, name: str, report: Callable[[], Report]) -> None:
        self._components[name] = report

    def remove_component(self, name: str) -> None:
        self._components.pop(name, None)

    def components(self) -> dict[str, Report]:
        reports: dict[str, Report] = {}
        for name, report in self._components.items():
            try:
                reports[name] = report()
            except Exception as exc:  # a broken reporter must not take /health down
                log.exception("health report of %s failed", name)
                reports[name] = {"status": "error", "error": f"health report failed: {exc}"}
        return reports

    def summary(self) -> Report:
        merged: Report = {}
        for report in self._summaries:
            try:
                merged.update(report())
            except Exception:
                log.exception("health summary %r failed", report)
        return merged


def add_routes(app: web.Application) -> None:
    """GET /health and its alias /api/health (public: faced.api.access)."""
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
