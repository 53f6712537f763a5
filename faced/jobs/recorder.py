"""Recording a take from the box's camera to a video file, for one job that asked for it.

Owns: writing the camera's frames for N seconds to a Motion-JPEG AVI (what faced's own
reader decodes fastest, faced.vision.video), and when the take started (its timecode).
Does not own: the camera (faced.devices.camera, run by faced.live) or the job
(faced.jobs.service). Frames go to disk only here, only because a request asked for a take;
the job deletes the file after processing unless it was asked to keep it. Blocking: run it
in a thread.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from faced.devices.camera import Camera

WAIT_FRAME_S: Final = 0.5
NO_FRAMES_S: Final = 5.0
"""A camera that gives no frame this long ends the recording (with what it has)."""


@dataclass(frozen=True, slots=True)
class Take:
    frames: int
    bytes: int
    started_wall_ms: int
    """The first frame's wall-clock time (ms since the epoch): the take's timecode."""


def record(camera: Camera, path: Path, seconds: float, fps: float, stop: threading.Event) -> Take:
    """Write ``seconds`` of the camera's frames to ``path`` at the camera's ``fps``; stops
    early when ``stop`` is set or the camera goes quiet. The file is fsync'd."""
    import cv2  # noqa: PLC0415  (OpenCV only for a take)

    writer: cv2.VideoWriter | None = None
    frames = 0
    last_index = 0
    started_wall_ms = int(time.time() * 1000)
    deadline: float | None = None
    quiet_since = time.monotonic()
    try:
        while not stop.is_set():
            frame = camera.wait_frame(last_index, WAIT_FRAME_S)
            now = time.monotonic()
            if frame is None:
                if now - quiet_since > NO_FRAMES_S:
                    break
                continue
            quiet_since = now
            if deadline is None:
                deadline = frame.captured + seconds
                started_wall_ms = int((time.time() - (now - frame.captured)) * 1000)
            if frame.captured >= deadline:
                break
            last_index = frame.index
            image = frame.image
            if writer is None:
                height, width = image.shape[:2]
                fourcc = cv2.VideoWriter.fourcc(*"MJPG")
                writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            frames += 1
    finally:
        if writer is not None:
            writer.release()
    size = 0
    if frames:
        with path.open("rb") as handle:
            os.fsync(handle.fileno())
        size = path.stat().st_size
    return Take(frames=frames, bytes=size, started_wall_ms=started_wall_ms)


__all__ = ["Take", "record"]
