"""``GET /metrics``: the Prometheus scrape endpoint.

Owns: the route, its access class and its description. Does not own the registry or any
figure (faced.metrics). Why this handler and not prometheus_client's ``make_aiohttp_handler``:
the same content negotiation (``_bake_output``: text format 0.0.4 by default, OpenMetrics
when the scraper's ``Accept`` asks for it, ``?name[]=`` filters), but the collection runs in
a worker thread (the process collector reads /proc, which must not block the event loop).
Access: camera-derived (presence, attention), so PRIVATE — the API key, or loopback only
while none is set — unless ``metrics.public`` opens it for a scraper that cannot send headers.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from faced.api import openapi
from faced.keys import ACCESS_KEY, CONFIG_KEY, METRICS_KEY


def add_routes(app: web.Application) -> None:
    """GET /metrics, when metrics.enabled (faced.app puts the registry under METRICS_KEY)."""
    if METRICS_KEY not in app:
        return
    route = app.router.add_get("/metrics", metrics_handler)
    policy = app[ACCESS_KEY]
    if app[CONFIG_KEY].metrics.public:
        policy.public(route)
    else:
        policy.private(route)
    openapi.describe(
        app,
        route,
        openapi.Operation(
            summary="Prometheus metrics (text format; OpenMetrics by Accept)",
            description=(
                "Requests by route template and status, clients, camera and tracking, "
                "pipeline stage times, presence and attention, speaker, display, analyze, and "
                "the process (docs/api.md#metrics). Private (the API key, or loopback while "
                "none is set) unless metrics.public is true."
            ),
            tags=("meta",),
            response_content={
                "text/plain; version=0.0.4": {"type": "string"},
                "application/openmetrics-text; version=1.0.0": {"type": "string"},
            },
        ),
    )


async def metrics_handler(request: web.Request) -> web.Response:
    query = request.query
    params = {key: query.getall(key) for key in query}
    accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
    status, headers, body = await request.app[METRICS_KEY].scrape(accept, params)
    response = web.Response(status=status, headers=headers, body=body)
    response.enable_compression()  # gzip/deflate as the scraper's Accept-Encoding allows
    return response
