"""Live tracking: the box's camera, every frame through the face pipeline, results and presence.

Owns: the camera and tracking component (``LiveService``: the capture thread,
faced.devices.camera, and the tracking thread started at startup and stopped at cleanup);
the hub of tracking results (``results``: latest-wins subscribers, one per /ws/tracking
client); ``LiveTracking``, the thread that takes the camera's latest frame, runs the
pipeline in tracking mode (VIDEO mode: faced.vision.tracker) and hands the result to the
event loop; ``Presence``, which debounces face found / not found into ``arrived`` /
``left`` events (with how long) and rate-limited ``moved`` updates carrying only the face's
position. Does not own: the routes (faced.api.tracking), or what viewers see of a person —
presence goes to the Open Face service (faced.openface), never face data. Why apart: the
camera's results have readers of their own (/ws/tracking, gaze follow) that viewers must
never see.

When the pipeline is slower than the camera, frames in between are skipped, never queued:
the thread always takes the newest frame. Likewise when the loop is slower than the
pipeline (a stalled or starved loop): one result waits for it, the newest, never a queue of
results each holding its frame. The thread runs the blendshape model on a frame only while
someone needs the scores (``LiveService.blendshapes``, faced.demand: a tracking socket that
asked, a recent reader, mirror mode, person events, MQTT, a calibration). On the loop each
result gets ``frame``, ``ts``, ``fps`` and ``latency_ms`` (capture → publish), feeds a
calibration being recorded, is calibrated when a neutral is set (faced.calibration, before
anyone reads it), becomes ``latest`` (without landmarks) and goes to every listener (the
results hub first, then gaze follow), to ``Presence``, then with its landmarks to the
``Perception`` (faced.perception), whose events go to the person events' hub (``person``: a
bounded queue per subscriber, /api/person/events and /ws/tracking?events=1) and its
observers (the face's history).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import WSCloseCode, web

from faced.calibration import Calibration
from faced.config import CameraConfig, Config, ConfigError, VisionConfig
from faced.demand import Demand
from faced.devices.camera import Camera, Frame, open_source
from faced.hub import Hub
from faced.listeners import Listeners
from faced.perception import Perception
from faced.schemas.analysis import Analysis
from faced.schemas.person import PersonEvent
from faced.schemas.tracking import EmotionState, Position, PresenceMessage, TrackingResult
from faced.vision.models import ModelError, default_model_dir
from faced.vision.tracker import Tracker

if TYPE_CHECKING:
    from faced.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

WAIT_FRAME_S: Final = 0.25
STEADY_SHARE: Final = 0.6
"""A face counts when found on at least this share of the frames of the last ``arrive_s``."""
_RECENT_MAX: Final = 512  # frames remembered for that share: ~4 s at 120 fps, a safe bound
FPS_WINDOW: Final = 32
_ANALYSIS_FIELDS: Final = Analysis.__struct_fields__
PERSON_QUEUE: Final = 64
"""Person events one /api/person/events or /ws/tracking?events=1 client may have unsent
before it counts as too slow (events come a few a second at most)."""


class Presence:
    """Debounces per-frame face found / not found into presence events."""

    def __init__(
        self,
        *,
        arrive_s: float = 0.3,
        leave_s: float = 2.0,
        move_interval_s: float = 0.2,
        move_threshold: float = 0.03,
    ) -> None:
        self._arrive_s = arrive_s
        self._leave_s = leave_s
        self._move_interval_s = move_interval_s
        self._move_threshold = move_threshold
        self.present = False
        self._recent: deque[tuple[float, bool]] = deque(maxlen=_RECENT_MAX)
        self._missing_since: float | None = None
        self._arrived_at: float | None = None
        self._left_at: float | None = None
        self._position: Position | None = None
        self._position_sent_at = -float("inf")

    @property
    def position(self) -> Position | None:
        return self._position if self.present else None

    def update(
        self, bbox: tuple[float, float, float, float] | None, now: float, wall_ms: int
    ) -> PresenceMessage | None:
        """Feed one frame's primary face box (None: no face); an event when one is due.
        ``now`` is monotonic seconds, ``wall_ms`` the frame's wall-clock time.

        A face counts once it is found steadily — on most frames of the last ``arrive_s``
        (``STEADY_SHARE``) — whether it is arriving or coming back while the person is
        about to be declared gone: a detector finds faces on single frames where there are
        none (MediaPipe's does, on a cat's face), and such flickers must neither bring
        someone in nor keep them from leaving (nor pull the position to where they
        flicker), while a real face missed on a frame now and then still counts."""
        steady = self._steady(bbox is not None, now)
        if bbox is None:
            if not self.present:
                return None
            if self._missing_since is None:
                self._missing_since = now
            if now - self._missing_since < self._leave_s:
                return None
            self.present = False
            self._left_at = self._missing_since
            stayed = self._missing_since - (self._arrived_at or self._missing_since)
            self._position = None
            return PresenceMessage(
                event="left", present=False, ts=wall_ms, duration=round(stayed, 3)
            )
        x, y, w, h = bbox
        position = Position(x=round(2 * (x + w / 2) - 1, 3), y=round(2 * (y + h / 2) - 1, 3))
        if not self.present:
            if not steady:
                return None
            self.present = True
            self._missing_since = None
            self._arrived_at = now
            absent = None if self._left_at is None else round(now - self._left_at, 3)
            return self._moved_to(position, now, "arrived", wall_ms, absent)
        if self._missing_since is not None:
            if not steady:
                return None  # a flicker while they may be leaving: the countdown goes on
            self._missing_since = None
        last = self._position
        moved = (
            last is None
            or max(abs(position.x - last.x), abs(position.y - last.y)) >= self._move_threshold
        )
        if moved and now - self._position_sent_at >= self._move_interval_s:
            return self._moved_to(position, now, "moved", wall_ms, None)
        return None

    def _steady(self, found: bool, now: float) -> bool:
        """Remember this frame; True when a face is found now and on at least
        ``STEADY_SHARE`` of the frames that span the last ``arrive_s`` (the frame at or
        just before its start included, so a face seen only now does not count)."""
        recent = self._recent
        recent.append((now, found))
        start = now - self._arrive_s
        while len(recent) > 1 and recent[1][0] <= start:
            recent.popleft()
        if not found or recent[0][0] > start:
            return False
        return sum(seen for _, seen in recent) >= STEADY_SHARE * len(recent)

    def _moved_to(
        self, position: Position, now: float, event: str, wall_ms: int, duration: float | None
    ) -> PresenceMessage:
        self._position = position
        self._position_sent_at = now
        return PresenceMessage(
            event="arrived" if event == "arrived" else "moved",
            present=True,
            ts=wall_ms,
            duration=duration,
            position=position,
        )


class LiveTracking:
    """The tracking thread and what it last published (read on the loop)."""

    def __init__(
        self,
        camera: Camera,
        tracker: Tracker,
        loop: asyncio.AbstractEventLoop,
        *,
        presence: Presence | None = None,
        on_presence: Callable[[PresenceMessage], None] | None = None,
        perception: Perception | None = None,
        calibration: Calibration | None = None,
        blendshapes: Demand | None = None,
    ) -> None:
        self.camera = camera
        self.calibration = calibration or Calibration()
        self.blendshapes = blendshapes or Demand(always=True)
        """Who needs the blendshapes now: the model runs on a frame only when someone
        does (faced.demand)."""
        self.blendshapes_running = False
        """Whether the last frame ran the blendshape model."""
        self._tracker = tracker
        self._loop = loop
        self.presence = presence or Presence()
        self._on_presence = on_presence
        self.perception = perception or Perception()
        self.listeners: Listeners[TrackingResult] = Listeners("tracking")
        self.person_listeners: Listeners[PersonEvent] = Listeners("person")
        """Told of each person event (the person events' hub, the face's history)."""
        self.perception_s = 0.0
        """Time perception took on the loop, in total (for /health and the benchmark)."""
        self.latest: TrackingResult | None = None
        self.processed = 0
        self.skipped = 0
        self.failures = 0
        self.enabled = True
        """False: the thread looks at no frame (a run-time toggle, faced.components)."""
        self._published_at: deque[float] = deque(maxlen=FPS_WINDOW)
        self._next_result: asyncio.Future[None] | None = None
        # The result waiting for the loop: appending replaces it (atomic under the GIL), and
        # one callback at a time is scheduled to take it. `faced bench soak` saw a loop
        # stalled for 100 s by an overloaded host gather 120 MiB of queued results.
        self._waiting: deque[tuple[Analysis, Frame]] = deque(maxlen=1)
        self._scheduled = False
        self.superseded = 0
        """Results replaced by a newer one before the loop took them."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Monotonic -> wall clock, fixed once so ``ts`` never jumps with NTP corrections.
        self._wall_offset = time.time() - time.monotonic()

    @property
    def fps(self) -> float:
        stamps = self._published_at
        if len(stamps) < 2 or stamps[-1] <= stamps[0]:
            return 0.0
        return (len(stamps) - 1) / (stamps[-1] - stamps[0])

    def emotion_state(self) -> EmotionState | None:
        latest = self.latest
        if latest is None:
            return None
        return EmotionState(
            face_found=latest.face_found,
            frame=latest.frame,
            ts=latest.ts,
            blendshapes=latest.blendshapes,
        )

    def report(self) -> dict[str, object]:
        running = self._thread is not None and self._thread.is_alive() and self.enabled
        return {
            "status": "ok" if running else "off",
            "enabled": self.enabled,
            "fps": round(self.fps, 1),
            "processed": self.processed,
            "skipped": self.skipped,
            "failures": self.failures,
            "present": self.presence.present,
            "detector": self._tracker.detector_report(),
            "blendshapes": running and self.blendshapes_running,
        }

    def blendshapes_report(self) -> dict[str, object]:
        """For /health: whether the blendshape model runs on live frames, and for whom."""
        running = self._thread is not None and self._thread.is_alive() and self.enabled
        consumers = self.blendshapes.consumers()
        return {"running": running and bool(consumers), "consumers": consumers}

    async def result_with_blendshapes(self, within_s: float) -> TrackingResult | None:
        """The latest result, or, when it has a face but no blendshapes (nobody needed them
        until now: the caller has just asked), the next one, waited for up to ``within_s``
        seconds (the tracking thread reads the demand once per frame)."""
        latest = self.latest
        if latest is None or not latest.face_found or latest.blendshapes is not None:
            return latest
        waiter = self._next_result = self._next_result or self._loop.create_future()
        try:
            async with asyncio.timeout(within_s):
                while True:
                    await asyncio.shield(waiter)
                    latest = self.latest
                    if latest is None or not latest.face_found or latest.blendshapes is not None:
                        return latest
                    waiter = self._next_result = self._next_result or self._loop.create_future()
        except TimeoutError:
            return self.latest

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="tracking", daemon=True)
        self._thread = thread
        thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (blocking: call from a worker thread)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the tracking thread -------------------------------------------------------------

    def _run(self) -> None:
        last_index = 0
        stream = 0
        last_ts = -1
        while not self._stop.is_set():
            frame = self.camera.wait_frame(last_index, WAIT_FRAME_S)
            if frame is None:
                if self.camera.status == "error":
                    # A failed camera sees nobody: presence runs out as if the person left.
                    with contextlib.suppress(RuntimeError):  # the loop is closed
                        self._loop.call_soon_threadsafe(self._no_frame)
                continue
            if not self.enabled:
                # Switched off: no frame is looked at, and presence runs out as if the
                # person left, so the display policy and the face do not wait for them.
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._no_frame)
                last_index = frame.index
                stream = -1  # switched on again: a new stream for the tracker
                continue
            if frame.stream != stream:
                stream = frame.stream
                self._tracker.reset()  # a reopened camera is a new stream
            elif frame.index > last_index + 1:
                self.skipped += frame.index - last_index - 1
            last_index = frame.index
            ts_ms = max(int(frame.captured * 1000), last_ts + 1)
            last_ts = ts_ms
            try:
                # Landmarks for perception's distance (the irises); they are dropped before
                # the result is published: clients get them from the analyze API.
                wanted = self.blendshapes.needed()
                analysis = self._tracker.process(
                    frame.image, ts_ms, landmarks=True, blendshapes=wanted
                )
                self.blendshapes_running = wanted
            except Exception:
                # One bad frame must not end tracking; the next frame is a fresh try. A
                # persistent failure is logged at 1, 2, 4, 8, … failures, not 30 times/s.
                self.failures += 1
                if self.failures & (self.failures - 1) == 0:
                    log.exception(
                        "tracking failed on frame %d (%d failures)", frame.index, self.failures
                    )
                self._tracker.reset()
                continue
            self.processed += 1
            if self._waiting:
                self.superseded += 1
            self._waiting.append((analysis, frame))
            if not self._scheduled:
                self._scheduled = True
                try:
                    self._loop.call_soon_threadsafe(self._publish_waiting)
                except RuntimeError:
                    return  # the loop is closed: the daemon is going down

    # --- on the event loop ----------------------------------------------------------------

    def _no_frame(self) -> None:
        now = time.monotonic()
        wall_ms = int((now + self._wall_offset) * 1000)
        event = self.presence.update(None, now, wall_ms)
        self._announce(event)
        self._perceive(None, event, now, wall_ms)

    def _publish_waiting(self) -> None:
        # Cleared before taking: a result the thread adds meanwhile schedules its own call.
        self._scheduled = False
        if self._waiting:
            self._publish(*self._waiting.popleft())

    def _publish(self, analysis: Analysis, frame: Frame) -> None:
        now = time.monotonic()
        self._published_at.append(now)
        wall_ms = int((frame.captured + self._wall_offset) * 1000)
        fields = {name: getattr(analysis, name) for name in _ANALYSIS_FIELDS}
        full = TrackingResult(
            **fields,
            frame=frame.index,
            ts=wall_ms,
            fps=round(self.fps, 2),
            latency_ms=round((now - frame.captured) * 1000, 3),
        )
        self.calibration.observe(full)
        full = self.calibration.apply(full)
        result = without_landmarks(full)
        self.latest = result
        waiter, self._next_result = self._next_result, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.listeners(result)
        event = self.presence.update(result.bbox, now, wall_ms)
        self._announce(event)
        self._perceive(full, event, now, wall_ms)

    def _perceive(
        self,
        result: TrackingResult | None,
        presence: PresenceMessage | None,
        now: float,
        wall_ms: int,
    ) -> None:
        began = time.perf_counter()
        events = self.perception.update(
            result, presence, present=self.presence.present, now=now, wall_ms=wall_ms
        )
        self.perception_s += time.perf_counter() - began
        for event in events:
            if event.event not in ("arrived", "left"):
                log.info("person %s", event.event)
            self.person_listeners(event)

    def _announce(self, event: PresenceMessage | None) -> None:
        if event is None:
            return
        if event.event != "moved":
            log.info("person %s", event.event, extra={"duration_s": event.duration})
        if self._on_presence is not None:
            self._on_presence(event)


def without_landmarks(result: TrackingResult) -> TrackingResult:
    """The result as clients get it: 478 points per face at 30 fps is the analyze API's job."""
    if result.landmarks is None and all(face.landmarks is None for face in result.faces):
        return result
    faces = [msgspec.structs.replace(face, landmarks=None) for face in result.faces]
    return msgspec.structs.replace(result, faces=faces, landmarks=None)


# --- the component -------------------------------------------------------------------------


def _load_pipeline(vision: VisionConfig) -> FacePipeline:
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415  (loads the runtime)
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    return FacePipeline.load(
        vision.model_dir or None,
        num_faces=vision.num_faces,
        runtime=Runtime.from_config(vision),
        detector=vision.detector,
    )


class LiveService:
    """The camera, the tracking and the tracking results' hub of one daemon."""

    def __init__(
        self,
        config: Config,
        on_presence: Callable[[PresenceMessage], None],
        calibration: Calibration | None = None,
    ) -> None:
        self.config: CameraConfig = config.camera
        self.calibration = calibration or Calibration()
        """The neutral face live results are calibrated against (faced.calibration)."""
        self._vision = config.vision
        self.blendshapes = Demand(always=config.vision.blendshapes == "always")
        """Who needs live blendshapes now (faced.demand): the routes and components that
        read them hold, touch or watch it."""
        self._on_presence = on_presence
        self.camera: Camera | None = None
        self.live: LiveTracking | None = None
        """Set at startup when ``camera.tracking`` is on."""
        self._pipeline: FacePipeline | None = None
        self.results = Hub(max_messages=1, max_bytes=1)  # latest-wins subscribers only
        self.person = Hub(max_messages=PERSON_QUEUE, max_bytes=PERSON_QUEUE * 1024)
        """Person events (faced.perception): every event, in order, to each subscriber."""
        self._perception = config.perception
        self.closing = asyncio.Event()
        self.has_camera = config.camera.source != "none"
        # Perception's speech, expression and smile come from the blendshapes: they are
        # needed while someone follows the person's events, and while a calibration records.
        self.blendshapes.watch("person events", lambda: len(self.person) > 0)
        self.blendshapes.watch("calibration", lambda: self.calibration.recording)

    def tracking_models(self) -> FacePipeline | None:
        """The live tracker's loaded models while tracking runs, else None: for the one
        analyze worker to share (``vision.analyze_shares_tracker_models``). Every call
        on the pipeline, its trackers included, serialises on the pipeline's lock, and an
        IMAGE-mode call touches no tracker's state."""
        return self._pipeline

    @property
    def clients(self) -> int:
        """Tracking result subscribers (/ws/tracking clients)."""
        return len(self.results)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: models loaded off the loop, then the capture and tracking
        threads; both stopped at cleanup."""
        del app
        config = self.config
        if not self.has_camera:
            yield
            return
        model_dir = await asyncio.to_thread(default_model_dir, self._vision.model_dir or None)
        try:
            source = open_source(config, model_dir)
        except ValueError as exc:
            raise ConfigError(f"camera.source = {config.source!r}: {exc}") from None
        assert source is not None  # only "none" has no source
        tracker = pipeline = None
        if config.tracking:
            try:
                pipeline = await asyncio.to_thread(_load_pipeline, self._vision)
            except ModelError as exc:
                raise ConfigError(f"camera.tracking needs the face models: {exc}") from None
            tracker = pipeline.tracker(smoothing=True)
        camera = self.camera = Camera(
            source, fps=config.fps, rotation=config.rotation, mirror=config.mirror
        )
        if tracker is not None:
            live = self.live = LiveTracking(
                camera,
                tracker,
                asyncio.get_running_loop(),
                on_presence=self._on_presence,
                perception=Perception(self._perception, config),
                calibration=self.calibration,
                blendshapes=self.blendshapes,
            )
            live.listeners.append(self.results.publish)
            live.person_listeners.append(self.person.publish)
            live.start()
            self._pipeline = pipeline
        camera.start()
        log.info("camera %s started", source.name, extra={"tracking": tracker is not None})
        try:
            yield
        finally:
            self._pipeline = None  # an analyze worker still holding it keeps it alive
            if self.live is not None:
                await asyncio.to_thread(self.live.stop)
            await asyncio.to_thread(camera.stop)

    async def shutdown(self, app: web.Application) -> None:
        """On shutdown: end the preview streams and every tracking socket (1001)."""
        del app
        self.closing.set()
        self.results.close_all(WSCloseCode.GOING_AWAY, "server shutting down")
        self.person.close_all(WSCloseCode.GOING_AWAY, "server shutting down")

    def blendshapes_summary(self) -> dict[str, Any]:
        """/health's ``blendshapes``: whether live tracking runs the model, and for whom."""
        if self.live is None:
            return {}
        return {"blendshapes": self.live.blendshapes_report()}

    def camera_report(self) -> dict[str, Any]:
        if self.camera is None:
            return {"status": "off", "source": self.config.source}
        return self.camera.report()

    def perception_report(self) -> dict[str, Any]:
        """What perception says of itself: running or not, and its cost (no person data)."""
        live = self.live
        if live is None or not live.enabled:
            return {"status": "off", "reason": "no live tracking"}
        return {"status": "ok", "ms_total": round(live.perception_s * 1000, 1)}

    def tracking_report(self) -> dict[str, Any]:
        if self.live is None:
            reason = "camera.tracking is false" if self.has_camera else "no camera"
            return {"status": "off", "reason": reason}
        report = self.live.report()
        report["clients"] = self.clients
        report["slow_clients_disconnected"] = self.results.slow_disconnects
        return report


__all__ = ["LiveService", "LiveTracking", "Presence", "without_landmarks"]
