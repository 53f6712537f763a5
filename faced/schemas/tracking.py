"""Live tracking messages: results of the box's own camera, presence, emotion state.

Owns: the types. ``TrackingResult`` is the analyze result
(faced.schemas.analysis) plus where the frame sits in the stream; ``PresenceMessage`` is
what viewers may see of a person (never blendshapes or images); ``EmotionState`` is the
current blendshape intensities (Synthetic Heart's name for them). Does not own: making
them (faced.live) or serving them (faced.api.tracking). Why apart: the sockets, the routes,
the benchmarks and the OpenAPI document decode and describe the same types.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from faced.schemas.analysis import Analysis


class TrackingResult(Analysis, kw_only=True):
    frame: int
    """The camera's frame counter (gaps are frames skipped while the pipeline was busy)."""
    ts: int
    """When the frame was captured, in milliseconds since the Unix epoch."""
    fps: float
    """Results published per second, over the last second or so."""
    latency_ms: float
    """From capture to publication of this result."""
    calibrated: bool = False
    """True when the primary face's blendshapes are relative to the neutral face measured
    by ``POST /api/tracking/calibrate`` (faced.calibration); left out when False."""


class Position(msgspec.Struct, kw_only=True):
    """Where the person's face is in the camera's image, for the face's gaze."""

    x: float
    """-1 (image's left edge) .. 1 (right edge)."""
    y: float
    """-1 (top) .. 1 (bottom)."""


class PresenceMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="presence"):
    """Someone arrived, left or moved in front of the camera (debounced)."""

    event: Literal["arrived", "left", "moved"]
    present: bool
    ts: int
    """Milliseconds since the Unix epoch."""
    duration: float | None = None
    """Seconds: on ``left`` how long the person stayed, on ``arrived`` how long nobody
    was there (None for the first arrival)."""
    position: Position | None = None
    """The face's position while present (None on ``left``)."""


class EmotionState(msgspec.Struct, kw_only=True):
    face_found: bool
    frame: int
    ts: int
    blendshapes: dict[str, float] | None
    """The 52 ARKit blendshape intensities 0..1 of the primary face; None without a face."""


__all__ = ["EmotionState", "Position", "PresenceMessage", "TrackingResult"]
