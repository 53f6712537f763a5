"""One job's work (in the job process): a video in, curves JSON and Live Link Face CSV out.

Owns: reading the video frame by frame (faced.vision.video's ``timed_frames``, the very
loop `faced analyze VIDEO --jsonl` runs), tracking it in VIDEO mode with a tracker of the
job process's own pipeline (smoothing on, as live tracking), correcting eyeLookDown's lid
drift when the daemon does (faced.vision.lid_drift) and calibrating the scores when the
job asked, as live results are, and writing both files as frames come (never the whole
take in memory). Does not own: the process it runs in and its priority (faced.jobs.child),
which job runs when, the database or the routes (faced.jobs.service, faced.api.jobs).
Blocking.

A file that cannot be read as a video raises ``JobFailed`` with a sentence for the client;
``Cancelled`` when ``cancelled`` is set in between frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from faced.calibration import calibrated
from faced.jobs import livelink
from faced.jobs.store import Settings
from faced.schemas.jobs import CurveFrame, HeadAngles
from faced.state import DISK_FULL
from faced.vision.lid_drift import corrected_look_down

if TYPE_CHECKING:
    from faced.vision.pipeline import FacePipeline

CURVES_FILE: Final = "curves.json"
PROGRESS_EVERY: Final = 0.02
"""Progress is reported in steps of this share of the frames (50 updates a job)."""


ProgressFn = Callable[[float], None]
"""Told the share of frames done (0..1)."""


class JobFailed(Exception):
    """The job cannot be done; the message is the job's ``error``."""


class Cancelled(Exception):
    """The job was deleted, or the daemon is stopping."""


@dataclass(frozen=True, slots=True)
class Outcome:
    frames: int
    fps: float
    duration_s: float
    faces_found: int
    csv_name: str


def process(
    pipeline: FacePipeline,
    video_path: Path,
    out_dir: Path,
    settings: Settings,
    *,
    take: int,
    subject: str,
    progress: ProgressFn,
    cancelled: threading.Event,
) -> Outcome:
    """Track ``video_path`` and write ``out_dir/curves.json`` and the CSV (named
    ``<slate>_<take>_<subject>.csv``); each file appears whole or not at all: a job that
    stops leaves no partial file, and a full disk fails it saying so."""
    try:
        return _track(
            pipeline, video_path, out_dir, settings,
            take=take, subject=subject, progress=progress, cancelled=cancelled,
        )  # fmt: skip
    except BaseException as exc:
        for partial in out_dir.glob("*.part"):
            partial.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise JobFailed(f"cannot write the results: {exc.strerror} ({out_dir})") from None
        raise


def _track(
    pipeline: FacePipeline,
    video_path: Path,
    out_dir: Path,
    settings: Settings,
    *,
    take: int,
    subject: str,
    progress: ProgressFn,
    cancelled: threading.Event,
) -> Outcome:
    from faced.vision.video import VideoError, VideoReader  # noqa: PLC0415  (OpenCV)

    try:
        video = VideoReader(video_path, "rgba")  # the pipeline's working layout
    except VideoError:
        raise JobFailed("the file cannot be opened as a video") from None
    csv_name = livelink.file_name(settings.label, take, subject)
    with video:
        fps = video.fps or 30.0
        step_s = 1 / settings.fps if settings.fps is not None and settings.fps < fps else 0.0
        out_fps = 1 / step_s if step_s else fps
        total = video.frame_count
        tracker = pipeline.tracker(smoothing=True)
        encoder = msgspec.json.Encoder()
        neutral = settings.neutral if settings.calibrated else None
        curves_part = out_dir / (CURVES_FILE + ".part")
        csv_part = out_dir / (csv_name + ".part")
        frames = faces = 0
        next_report = PROGRESS_EVERY
        last_t = 0.0
        with curves_part.open("wb") as curves, csv_part.open("w", newline="") as csv:
            curves.write(
                b'{"fps":%s,"calibrated":%s,"frames":['
                % (encoder.encode(round(out_fps, 6)), b"true" if neutral else b"false")
            )
            rows = livelink.Writer(csv, settings.start_ms_of_day)
            for index, timestamp, image in video.timed_frames(step_s, tracker.next_footprint):
                if cancelled.is_set():
                    raise Cancelled
                result = tracker.process(image, timestamp)
                shapes = result.blendshapes
                if shapes is not None and settings.lid_drift_correction:
                    shapes = corrected_look_down(shapes, neutral)
                if shapes is not None and neutral is not None:
                    shapes = calibrated(shapes, neutral)
                head = result.head
                angles = None if head is None else HeadAngles(
                    yaw=head.yaw, pitch=head.pitch, roll=head.roll
                )  # fmt: skip
                last_t = index / fps
                entry = CurveFrame(
                    frame=index,
                    t=round(last_t, 6),
                    face=result.face_found,
                    blendshapes=shapes,
                    head=angles,
                    eyes=result.eyes,
                )
                curves.write((b"," if frames else b"") + encoder.encode(entry))
                rows.row(last_t, shapes, angles, result.eyes)
                frames += 1
                faces += result.face_found
                if total > 0 and index / total >= next_report:
                    next_report = index / total + PROGRESS_EVERY
                    progress(min(index / total, 0.99))
            curves.write(b"]}")
            _sync(curves.fileno())
            csv.flush()
            _sync(csv.fileno())
        if frames == 0:
            raise JobFailed("the video has no readable frames")
        if rows.needs_30_base():
            rows.rebase_to_30(csv_part)
        curves_part.replace(out_dir / CURVES_FILE)
        csv_part.replace(out_dir / csv_name)
    return Outcome(
        frames=frames,
        fps=round(out_fps, 6),
        duration_s=round(last_t + 1 / out_fps, 3),
        faces_found=faces,
        csv_name=csv_name,
    )


def _sync(fd: int) -> None:
    os.fsync(fd)


__all__ = [
    "CURVES_FILE",
    "Cancelled",
    "JobFailed",
    "Outcome",
    "ProgressFn",
    "process",
]
