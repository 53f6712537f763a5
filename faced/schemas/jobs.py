"""Jobs (takes): what a client sends to start one, the job as the API shows it, its curves.

Owns: the shapes of ``POST /api/v1/jobs`` (``JobRequest``, ``JobOptions``), its 202 answer
(``JobsAccepted``), a job (``Job``, ``JobResult``), a page of them (``JobList``) and the
curves file (``Curves``). Does not own: running jobs or storing them (faced.jobs) or the
routes (faced.api.jobs). Why apart: the routes, the SSE stream, the Python client and the
OpenAPI document encode and decode the same types.

Times are milliseconds since the Unix epoch, as everywhere in faced (``ts``).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from faced.schemas.analysis import Eyes

MAX_RECORD_S: Final = 600
MAX_LABEL_CHARS: Final = 64

JobStatus = Literal["pending", "processing", "done", "failed"]
FINISHED: Final = frozenset({"done", "failed"})

Label = Annotated[str, Meta(max_length=MAX_LABEL_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")]
Fps = Annotated[float, Meta(gt=0, le=240)]


class JobOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a job's video is turned into curves (also the upload's query or form fields)."""

    label: Label | None = None
    """A name for the take (the CSV's slate); printable, at most 64 characters."""
    keep_video: bool = False
    """Keep the video after processing (served at ``video_url``); by default it is deleted
    as soon as the curves are made."""
    calibrated: bool = False
    """Apply the current calibration (POST /api/tracking/calibrate) to the blendshapes;
    409 when there is none."""
    fps: Fps | None = None
    """Take frames at this rate (at most the video's own): fewer frames, less work."""


class JobRequest(JobOptions, kw_only=True, forbid_unknown_fields=True):
    """The JSON body of ``POST /api/v1/jobs``: record a take from the box's own camera."""

    record_s: Annotated[float, Meta(ge=1, le=MAX_RECORD_S)]
    """Seconds to record from the camera (1..600); frames go to disk only for this job."""


class JobAccepted(msgspec.Struct, kw_only=True):
    job_id: str
    status: Literal["queued"] = "queued"


class JobsAccepted(msgspec.Struct, kw_only=True):
    """The 202 answer of ``POST /api/v1/jobs``: poll ``GET /api/v1/job/{job_id}``."""

    jobs: list[JobAccepted]


class JobResult(msgspec.Struct, kw_only=True):
    frames: int
    """Frames in the curves (one per video frame, or per ``fps`` step)."""
    fps: float
    """The curves' frame rate."""
    duration_s: float
    faces_found: int
    """Frames in which a face was found."""
    curves_url: str
    """The curves as JSON (``Curves``)."""
    csv_url: str
    """The curves as a Live Link Face CSV (Unreal's importer, Blender add-ons)."""
    csv_name: str
    """The CSV's file name, ``<slate>_<take>_<subject>.csv``."""
    video_url: str | None = None
    """The video, when the job was asked to keep it."""


class Job(msgspec.Struct, kw_only=True):
    """One job as ``GET /api/v1/job/{id}`` (and each of its SSE events) shows it."""

    id: str
    label: str | None
    status: JobStatus
    progress: float
    """0..1; 1 once done."""
    error: str | None
    """Why it failed (null unless failed)."""
    source: Literal["upload", "camera"]
    recording: bool
    """True while the box's camera is still recording this take."""
    created: int
    started: int | None
    finished: int | None
    result: JobResult | None
    """Set once done."""


class JobList(msgspec.Struct, kw_only=True):
    """A page of jobs, newest first."""

    jobs: list[Job]
    total: int
    """Jobs in all."""
    limit: int
    offset: int


class HeadAngles(msgspec.Struct, kw_only=True):
    yaw: float
    """Degrees; > 0 when the face turns toward the image's right."""
    pitch: float
    """Degrees; > 0 when the face tilts up."""
    roll: float
    """Degrees; > 0 when the head rotates counter-clockwise in the image."""


class CurveFrame(msgspec.Struct, kw_only=True):
    frame: int
    """The video frame's index (0-based)."""
    t: float
    """Seconds from the video's start."""
    face: bool
    blendshapes: dict[str, float] | None
    """The 52 ARKit names -> 0..1 (calibrated when the job asked), null without a face."""
    head: HeadAngles | None
    eyes: Eyes | None


class Curves(msgspec.Struct, kw_only=True):
    """A job's curves: one entry per frame, computed as live tracking computes them."""

    fps: float
    calibrated: bool
    frames: list[CurveFrame]


__all__ = [
    "FINISHED",
    "MAX_RECORD_S",
    "CurveFrame",
    "Curves",
    "HeadAngles",
    "Job",
    "JobAccepted",
    "JobDeleted",
    "JobList",
    "JobOptions",
    "JobRequest",
    "JobResult",
    "JobStatus",
    "JobsAccepted",
]


class JobDeleted(msgspec.Struct, kw_only=True):
    """``DELETE /api/v1/job/{id}``: the job was cancelled (if it ran) and removed."""

    id: str
    deleted: bool = True
