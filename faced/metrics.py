"""The daemon's Prometheus metrics: one registry per app and the collectors behind it.

Owns: the registry (never prometheus_client's global one: every app, and every test's app,
has its own), the metric families and their labels, and the little bookkeeping that has no
other owner — request durations by route template (fed by the request middleware), the
tracking results' capture→publish latency and stage times, analyze job times. Does not own
the route (faced.api.metrics) nor any component's figures: frames, clients, underruns,
presence … are read at scrape time from the counters each component already keeps for its
/health report, so there is no second bookkeeping on a hot path.

Why plain counts instead of prometheus_client's Counter/Histogram on the request path: a
labelled ``observe`` costs ~2 µs (a label lookup and a lock); a dict lookup, a ``bisect``
and two additions cost a few hundred ns, and every writer runs on the event loop. Label
sets stay small and bounded: route templates (never raw paths; unmatched requests share one
``route="unmatched"`` and a method from a fixed list), status codes, a fixed set of stages.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.web_urldispatcher import AbstractRoute
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

    from faced.api.connections import ConnectionGuard
    from faced.display_policy import DisplayService
    from faced.live import LiveService
    from faced.openface import OpenFace
    from faced.schemas.tracking import TrackingResult
    from faced.vision.workers import AnalyzePool
    from faced.voice import SpeakerService

# Seconds. Requests: a few ms for a small request up to seconds for an analyze upload.
REQUEST_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
# Per frame: a Pi 4 runs the pipeline in 15–60 ms; latency adds the wait for the tracker.
FRAME_BUCKETS: Final = (0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0)
STAGES: Final = ("detect", "landmarks", "blendshapes", "total")
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MAX_REQUEST_SERIES: Final = 2000
"""Routes × statuses is bounded by the router; this is a backstop, not the limit in use."""
DISPLAY_LEVELS: Final = ("on", "dim", "off")


class Durations:
    """A histogram as plain counts: one writer (the event loop), read at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        # bisect_left: a value equal to a bound falls in that bucket (Prometheus' "le").
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, +Inf last, as HistogramMetricFamily takes them."""
        running = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class Requests:
    """HTTP requests by (route, status): the middleware's ``observe`` per request.

    The common case is pre-bound: the middleware passes the handler it was given, and a
    handler that serves one route (with that route's method) finds its per-status series
    in one dict lookup by identity — no ``request.match_info.route`` (two property calls),
    no (route, status) tuple to build and hash. Everything else (HEAD on a GET handler, a
    handler shared by routes, the router's 404/405 stand-ins, a handler wrapped by a later
    middleware) takes the slower path keyed by route, which is also bounded."""

    def __init__(self) -> None:
        self.series: dict[tuple[AbstractRoute | str, int], Durations] = {}
        # handler -> (the route's method, its series by status); only handlers of one route.
        self._bound: dict[object, tuple[str, dict[int, Durations]]] = {}
        self._shared: set[object] | None = None

    def observe(
        self, handler: object, method: str, request: web.Request, status: int, seconds: float
    ) -> None:
        # Inline, no further call: this runs on every request.
        bound = self._bound.get(handler)
        if bound is not None and bound[0] == method:
            durations = bound[1].get(status)
            if durations is not None:
                durations.counts[bisect_left(REQUEST_BUCKETS, seconds)] += 1
                durations.total += seconds
                return
        self._add(handler, request, status).observe(seconds)

    def _add(self, handler: object, request: web.Request, status: int) -> Durations:
        route = request.match_info.route
        key: tuple[AbstractRoute | str, int] = (route, status)
        if route.resource is None:
            # The router's 404/405 stand-ins (a new object per request): one label for all.
            method = request.method
            key = (method if method in METHODS else "OTHER", status)
        if len(self.series) >= MAX_REQUEST_SERIES:
            key = ("OTHER", status)
        found = self.series.get(key)
        if found is None:
            found = self.series[key] = Durations(REQUEST_BUCKETS)
        if (
            key[0] is route
            and route.handler is handler
            and route.method != "HEAD"  # a GET's HEAD twin shares its handler: GET binds
            and handler not in self._shared_handlers(request)
        ):
            self._bound.setdefault(handler, (route.method, {}))[1][status] = found
        return found

    def _shared_handlers(self, request: web.Request) -> set[object]:
        """Handlers the router gives more than one resource or more than one method besides
        HEAD; worked out once, from the router (frozen by the first request)."""
        if self._shared is None:
            owners: dict[object, tuple[object, str]] = {}
            shared: set[object] = set()
            for route in request.app.router.routes():
                if route.method == "HEAD":
                    continue
                owner = (route.resource, route.method)
                if owners.setdefault(route.handler, owner) != owner:
                    shared.add(route.handler)
            self._shared = shared
        return self._shared

    def labelled(self) -> Iterator[tuple[list[str], Durations]]:
        """(method, route, status) labels beside each series."""
        for (route, status), durations in list(self.series.items()):
            if isinstance(route, str):
                labels = [route, "unmatched", str(status)]
            else:
                resource = route.resource
                template = resource.canonical if resource is not None else "unmatched"
                method = route.method if route.method in METHODS else "OTHER"
                labels = [method, template, str(status)]
            yield labels, durations


class Tracking:
    """The tracking results' timings (a hub observer: one call per published result)."""

    def __init__(self) -> None:
        self.latency = Durations(FRAME_BUCKETS)
        self.stages = {stage: Durations(FRAME_BUCKETS) for stage in STAGES}
        self._detect, self._landmarks, self._blendshapes, self._total = (
            self.stages[stage] for stage in STAGES
        )

    def __call__(self, result: TrackingResult) -> None:
        self.latency.observe(result.latency_ms / 1000)
        timing = result.timing_ms
        # A stage that did not run on this frame (the detector while tracking, the
        # blendshape model with nobody reading them) records nothing, not a 0 ms sample.
        for stage, ms in (
            (self._detect, timing.detect),
            (self._landmarks, timing.landmarks),
            (self._blendshapes, timing.blendshapes),
        ):
            if ms > 0:
                stage.observe(ms / 1000)
        self._total.observe(timing.total / 1000)


class Metrics:
    """The registry and what feeds it; built by the composition root (faced.app)."""

    def __init__(self, *, public: bool) -> None:
        self.public = public
        self.requests = Requests()
        self.tracking = Tracking()
        self.analyze_jobs = Durations(REQUEST_BUCKETS)
        self.scrapes = 0
        self._app: web.Application | None = None
        self._registry: CollectorRegistry | None = None

    @property
    def registry(self) -> CollectorRegistry:
        """Built at the first scrape: prometheus_client (29 modules, 1 MiB resident) is
        imported only on a box something scrapes."""
        if self._registry is None:
            from prometheus_client import (  # noqa: PLC0415
                CollectorRegistry,
                PlatformCollector,
                ProcessCollector,
            )
            from prometheus_client.registry import Collector  # noqa: PLC0415

            class Families(Collector):
                def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
                    self._collect = collect

                def collect(self) -> Iterable[Metric]:
                    return self._collect()

            registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=registry)  # RSS, CPU seconds, open fds
            PlatformCollector(registry=registry)  # the Python version
            registry.register(Families(self._families))
            self._registry = registry
        return self._registry

    def watch(self, app: web.Application) -> None:
        """Read the components from ``app`` (faced.keys) at scrape time; once every
        component has started, time the analyze pool's jobs."""
        self._app = app
        app.on_startup.append(self._started)  # after every cleanup context's start

    async def _started(self, app: web.Application) -> None:
        from faced.keys import ANALYZE_POOL_KEY  # noqa: PLC0415

        pool = app.get(ANALYZE_POOL_KEY)
        if pool is not None:
            pool.on_job = self.analyze_jobs.observe

    def report(self) -> dict[str, Any]:
        """The /health entry."""
        return {
            "status": "ok",
            "public": self.public,
            "scrapes": self.scrapes,
            "request_series": len(self.requests.series),
        }

    async def scrape(
        self, accept: str, params: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) in the format ``accept`` asks for; collected in a worker
        thread: the process collector reads /proc files, which must not block the loop."""
        from prometheus_client.exposition import _bake_output  # noqa: PLC0415

        self.scrapes += 1
        registry = self.registry
        status, headers, body = await asyncio.to_thread(
            _bake_output, registry, accept, "", params, True
        )
        return int(status.split(" ")[0]), dict(headers), body

    # --- the families, read at scrape time ---------------------------------------------

    def _families(self) -> Iterator[Metric]:
        yield from self._http()
        app = self._app
        if app is None:
            return
        from faced.keys import (  # noqa: PLC0415  (keys imports nothing of faced at run time)
            ANALYZE_POOL_KEY,
            CONNECTIONS_KEY,
            DISPLAY_KEY,
            LIVE_KEY,
            OPENFACE_KEY,
            SPEAKER_KEY,
        )

        yield from _clients(app.get(OPENFACE_KEY), app.get(LIVE_KEY))
        yield from _connections(app.get(CONNECTIONS_KEY))
        live = app.get(LIVE_KEY)
        if live is not None:
            yield from self._camera(live)
        yield from self._analyze(app.get(ANALYZE_POOL_KEY))
        yield from _speaker(app.get(SPEAKER_KEY))
        yield from _display(app.get(DISPLAY_KEY))

    def _http(self) -> Iterator[Metric]:
        from prometheus_client.core import (  # noqa: PLC0415
            CounterMetricFamily,
            HistogramMetricFamily,
        )

        labels = ["method", "route", "status"]
        total = CounterMetricFamily(
            "faced_http_requests", "HTTP requests by route template and status", labels=labels
        )
        duration = HistogramMetricFamily(
            "faced_http_request_duration_seconds",
            "HTTP request time, middleware in to response (a socket: its whole life)",
            labels=labels,
        )
        for values, durations in self.requests.labelled():
            total.add_metric(values, durations.count)
            duration.add_metric(values, durations.buckets(), durations.total)
        yield total
        yield duration

    def _camera(self, live: LiveService) -> Iterator[Metric]:
        camera = live.camera
        if camera is not None:
            yield _counter(
                "faced_camera_frames_captured", "Frames the camera captured", camera.frames
            )
            yield _counter("faced_camera_reopens", "Times the camera was reopened", camera.reopens)
            yield _gauge(
                "faced_camera_up", "1 while the camera delivers frames", camera.status == "ok"
            )
        tracking = live.live
        if tracking is None:
            return
        yield _counter(
            "faced_camera_frames_processed", "Frames tracking processed", tracking.processed
        )
        yield _counter(
            "faced_camera_frames_dropped",
            "Frames tracking skipped (it was busy with an earlier one)",
            tracking.skipped,
        )
        yield _counter("faced_tracking_failures", "Frames tracking failed on", tracking.failures)
        yield _counter(
            "faced_tracking_results", "Tracking results published", live.results.published
        )
        yield _gauge("faced_tracking_fps", "Tracking results per second, recent", tracking.fps)
        yield _histogram(
            "faced_tracking_latency_seconds",
            "Frame capture to tracking result published",
            [([], self.tracking.latency)],
        )
        yield _histogram(
            "faced_pipeline_stage_seconds",
            "Time per frame in each pipeline stage (total: the whole frame)",
            [([stage], durations) for stage, durations in self.tracking.stages.items()],
            labels=["stage"],
        )
        summary = tracking.perception.summary
        yield _gauge("faced_presence", "1 while someone is in front of the box", summary.present)
        yield _gauge("faced_people", "Faces in view on the latest frame", summary.people)
        yield _gauge("faced_attention", "1 while the person looks at the screen", summary.attention)
        yield _gauge(
            "faced_speaking", "1 while the person's mouth moves as in speech", summary.speaking
        )

    def _analyze(self, pool: AnalyzePool | None) -> Iterator[Metric]:
        if pool is None:
            return
        workers = pool.workers
        yield _counter(
            "faced_analyze_jobs",
            "Images and stream frames analyzed",
            sum(worker.done for worker in workers),
        )
        yield _counter(
            "faced_analyze_rejected", "Analyze requests refused: the pool was full", pool.rejected
        )
        yield _gauge("faced_analyze_pending", "Analyze jobs running or waiting", pool.pending)
        yield _gauge(
            "faced_analyze_streams",
            "Open /v1/stream sockets",
            sum(worker.streams for worker in workers),
        )
        yield _histogram(
            "faced_analyze_job_seconds",
            "Analyze job time in the pool, waiting included",
            [([], self.analyze_jobs)],
        )


def _clients(openface: OpenFace | None, live: LiveService | None) -> Iterator[Metric]:
    if openface is not None:
        yield _gauge("faced_viewers", "Connected viewers (/ws/viewer)", openface.viewers)
        yield _gauge("faced_agents", "Connected agents (/ws/agent)", openface.agents)
    if live is not None:
        yield _gauge("faced_tracking_clients", "Tracking result subscribers", live.clients)


def _connections(guard: ConnectionGuard | None) -> Iterator[Metric]:
    if guard is None:
        return
    yield _gauge("faced_connections", "Open HTTP connections", guard.open_connections)
    yield _counter(
        "faced_connections_refused",
        "Connections closed at accept: a client's or the total cap (server.max_connections*)",
        guard.refused,
    )
    yield _counter(
        "faced_connections_header_timeouts",
        "Connections closed without a whole request head (server.header_timeout_s)",
        guard.header_timeouts,
    )
    yield _counter(
        "faced_connections_body_timeouts",
        "Requests cut with 408: a body below server.body_min_bytes_per_s",
        guard.body_timeouts,
    )


def _speaker(voice: SpeakerService | None) -> Iterator[Metric]:
    speaker = voice.speaker if voice is not None else None
    if speaker is None:
        return
    yield _gauge(
        "faced_speaker_up", "1 while the speaker plays or is ready", speaker.status == "ok"
    )
    yield _gauge("faced_speaker_queued_seconds", "Audio waiting to play", speaker.queued_s)
    yield _counter(
        "faced_speaker_underruns",
        "Times the audio queue ran dry before the sequence was done",
        speaker.underruns,
    )
    yield _counter("faced_speaker_played_seconds", "Audio played", speaker.played_s)
    yield _counter("faced_speaker_reopens", "Times the speaker was reopened", speaker.reopens)


def _display(screen: DisplayService | None) -> Iterator[Metric]:
    display = screen.display if screen is not None else None
    if screen is None or display is None:
        return
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    level = screen.policy.level() if screen.policy is not None else None
    family = GaugeMetricFamily(
        "faced_display_level",
        "The display policy's level (1 for the current one)",
        labels=["level"],
    )
    for name in DISPLAY_LEVELS:
        family.add_metric([name], 1.0 if level == name else 0.0)
    yield family
    yield _gauge("faced_display_power", "1 while the display is powered", bool(display.power))
    if display.brightness is not None:
        yield _gauge("faced_display_brightness", "Backlight brightness, 0-100", display.brightness)


def _counter(name: str, documentation: str, value: float) -> Metric:
    from prometheus_client.core import CounterMetricFamily  # noqa: PLC0415

    return CounterMetricFamily(name, documentation, value=value)


def _gauge(name: str, documentation: str, value: float) -> Metric:
    from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

    return GaugeMetricFamily(name, documentation, value=float(value))


def _histogram(
    name: str,
    documentation: str,
    series: Iterable[tuple[list[str], Durations]],
    labels: list[str] | None = None,
) -> Metric:
    from prometheus_client.core import HistogramMetricFamily  # noqa: PLC0415

    family = HistogramMetricFamily(name, documentation, labels=labels or [])
    for values, durations in series:
        family.add_metric(values, durations.buckets(), durations.total)
    return family


__all__ = ["Durations", "Metrics", "Requests", "Tracking"]
