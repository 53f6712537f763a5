"""The capture thread: one camera source run in its own thread, the latest frame kept.

Owns ``Camera``: reading a source (faced.devices.camera.source) in a daemon thread, keeping
only the latest frame (no backlog), rotation and mirroring, the fps cap (paced sources are
read at their own rate), and the source's health: when it fails or vanishes the thread
reports ``error (reason)``, closes it and reopens it with backoff (faced.devices.retry)
while the rest of the daemon keeps serving; recovery is logged. Frames are RGB ``uint8``
arrays owned by the ``Frame`` (copied out of any driver buffer), never written to disk.
Does not own any back end, nor what is done with the frames (faced.live).
Why: a camera blocks and fails in ways the event loop must never feel.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import cv2

from faced.devices.camera.source import CameraError, Image, Source
from faced.devices.retry import Backoff, Health, Reporting

log = logging.getLogger(__name__)

BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 2.0
"""A camera that comes back is seen within 2 s, so tracking resumes within 5 s of its
return however long it was away; a failed open of a missing device costs next to nothing."""


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    """RGB, H x W x 3; owned by this frame — read it, never write it."""
    index: int
    """Counts frames since the camera started (gaps: frames skipped by the fps cap)."""
    captured: float
    """time.monotonic() when the frame was read."""
    stream: int
    """Increments each time the source is (re)opened: a new stream for the tracker."""


_ROTATIONS: Final = {
    90: cv2.ROTATE_90_CLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_COUNTERCLOCKWISE,
}


class Camera(Reporting):
    """Runs one source in a daemon thread; the latest frame and a status for /health."""

    def __init__(
        self,
        source: Source,
        *,
        fps: float,
        rotation: int = 0,
        mirror: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self._min_interval = 1.0 / fps
        self._rotation = rotation
        self._mirror = mirror
        self._clock = clock
        self._stop = threading.Event()
        self._new_frame = threading.Condition()
        self._thread: threading.Thread | None = None
        self.latest: Frame | None = None
        self.health = Health()
        """Its ``reopens`` count recoveries: opens that followed a failure."""
        self.frames = 0
        self._stream = 0
        self._failed_since: float | None = None
        self.last_error: str | None = None
        """Why the last outage began, kept after the camera recovers (for /health)."""
        self.last_outage_s: float | None = None
        """How long the last failure lasted, from the failure to the reopen."""

    # --- the consumer's side -------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The /health entry (plain attribute reads: safe from the event loop)."""
        report: dict[str, Any] = {"status": self.status, "source": self.source.name}
        if self.error is not None:
            report["error"] = self.error
        report["frames"] = self.frames
        report["reopens"] = self.reopens
        since = self._failed_since
        if since is not None:
            report["down_s"] = round(self._clock() - since, 1)
        if self.last_error is not None:
            report["last_error"] = self.last_error
        if self.last_outage_s is not None:
            report["last_outage_s"] = round(self.last_outage_s, 1)
        return report

    def wait_frame(self, after: int, timeout: float) -> Frame | None:
        """The latest frame newer than index ``after``, waiting up to ``timeout`` (blocking:
        call from a worker thread)."""
        with self._new_frame:
            self._new_frame.wait_for(
                lambda: (
                    (self.latest is not None and self.latest.index > after) or self._stop.is_set()
                ),
                timeout,
            )
            frame = self.latest
        return frame if frame is not None and frame.index > after else None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread = thread
        thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread and close the source (blocking: call from a worker thread)."""
        self._stop.set()
        with self._new_frame:
            self._new_frame.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.health.status = "off"

    # --- the capture thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        failed_since: float | None = None
        while not self._stop.is_set():
            try:
                self.source.open()
            except CameraError as exc:
                failed_since = self._failed(str(exc), failed_since)
                self._stop.wait(backoff.next())
                continue
            self._stream += 1
            if failed_since is not None:
                self.health.reopens += 1
                self.last_outage_s = self._clock() - failed_since
                log.info("camera %s recovered after %.1f s", self.source.name, self.last_outage_s)
            else:
                log.info("camera %s open", self.source.name)
            failed_since = self._failed_since = None
            try:
                self._capture()
            except CameraError as exc:
                # It delivered frames: the source worked, so the first retry comes soon.
                failed_since = self._failed(str(exc), None)
                backoff.reset()
            except Exception as exc:  # a driver bug must not kill the thread for good
                log.exception("camera %s: unexpected failure", self.source.name)
                failed_since = self._failed(f"{type(exc).__name__}: {exc}", None)
            finally:
                self._close_source()
            if failed_since is not None and not self._stop.is_set():
                self._stop.wait(backoff.delay_s)
        self._close_source()

    def _failed(self, reason: str, since: float | None) -> float:
        if self.health.failed(reason):
            log.warning("camera %s: %s; retrying", self.source.name, reason)
        if since is None:  # an outage begins: its first reason is what happened
            self.last_error = reason
            since = self._clock()
        self._failed_since = since
        return since

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.warning("camera %s did not close cleanly", self.source.name, exc_info=True)

    def _capture(self) -> None:
        pace = self.source.pace_fps
        # A paced source (file, demo) is read at its own rate capped by camera.fps; a live
        # camera is read as fast as it delivers (so its driver holds no stale frames) and
        # frames beyond the cap are dropped.
        interval = max(self._min_interval, 1.0 / pace) if pace else self._min_interval
        next_due = self._clock()
        last_kept = -math.inf
        while not self._stop.is_set():
            if pace:
                delay = next_due - self._clock()
                if delay > 0 and self._stop.wait(delay):
                    return
                next_due = max(next_due + interval, self._clock() - interval)
            image = self.source.read()
            now = self._clock()
            self.health.working()
            if not pace and now - last_kept < self._min_interval * 0.9:
                continue
            last_kept = now
            self.frames += 1
            frame = Frame(self._orient(image), self.frames, now, self._stream)
            with self._new_frame:
                self.latest = frame
                self._new_frame.notify_all()

    def _orient(self, image: Image) -> Image:
        if self._rotation:
            image = cast(Image, cv2.rotate(image, _ROTATIONS[self._rotation]))
        if self._mirror:
            image = cast(Image, cv2.flip(image, 1))
        return image


__all__ = ["BACKOFF_FIRST_S", "BACKOFF_MAX_S", "Camera", "Frame"]
