"""Per-person calibration: a measured neutral face, and live scores relative to it.

Owns: recording the neutral (the per-blendshape median of the primary face's raw scores
over a window of live tracking results, refused when nobody or more than one person is in
view), the calibrated score ``(raw - neutral) / (1 - neutral)`` clamped to 0..1, applying
it to each live result before anyone reads it (``calibrated: true``), and keeping the
neutral in ``<state dir>/calibration.json`` (faced.state) across restarts. With
``vision.lid_drift_correction`` each face's eyeLookDown is freed of its lid drift
(faced.vision.lid_drift, the neutral's eyeBlink as the rest) before it is calibrated, with
or without a neutral: calibration alone leaves that drift in. Does not own: the
tracking (faced.live calls ``observe`` and ``apply`` on the loop for each result) or the
routes (faced.api.calibration). Why: a resting face is not all zeros (MediaPipe reads
some brows, squints and mouth shapes at rest, differently for each face); animators and
agents want "how far from this person's rest", the way Live Link Face calibrates.

Only the primary face (the largest, the top-level fields) is calibrated: the neutral was
measured on one person and says nothing about anyone else in view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Final

import msgspec
import numpy as np
from aiohttp import web
from msgspec import Meta

from faced.api.errors import ApiError
from faced.schemas.tracking import TrackingResult
from faced.state import StateFile
from faced.vision.lid_drift import corrected_look_down

log = logging.getLogger(__name__)

STATE_FILE: Final = "calibration.json"
MIN_SECONDS: Final = 0.5
MAX_SECONDS: Final = 10.0
DEFAULT_SECONDS: Final = 2.0
MAX_FRAMES: Final = 1200
"""Frames one recording keeps (10 s at 120 fps): the window's memory is bounded."""
MIN_FRAMES: Final = 3
ONE_PERSON_SHARE: Final = 0.6
"""A recording counts when at least this share of its frames shows exactly one face (a
missed frame or a flicker is fine; someone leaving or joining is not)."""


class Neutral(msgspec.Struct, kw_only=True):
    """The neutral face measured by a calibration (also the persisted file)."""

    blendshapes: dict[str, float]
    """The 52 ARKit names -> the person's resting score 0..1 (median over the window)."""
    frames: int
    """Frames with exactly one face the median was taken over."""
    seconds: float
    """The window asked for."""
    ts: int
    """When it was measured, milliseconds since the Unix epoch."""


class CalibrationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seconds: Annotated[float, Meta(ge=MIN_SECONDS, le=MAX_SECONDS)] = DEFAULT_SECONDS
    """How long to record the neutral face (0.5..10 s)."""


class CalibrationState(msgspec.Struct, kw_only=True):
    """What ``GET``/``DELETE /api/tracking/calibrate`` answer."""

    calibrated: bool
    """Whether live results are calibrated now."""
    neutral: Neutral | None
    """The neutral in use (None when not calibrated)."""


def calibrated(raw: Mapping[str, float], neutral: Mapping[str, float]) -> dict[str, float]:
    """Each score relative to the neutral: ``(raw - n) / (1 - n)`` clamped to 0..1; a name
    the neutral lacks passes unchanged."""
    out: dict[str, float] = {}
    for name, value in raw.items():
        rest = neutral.get(name)
        if rest is None:
            out[name] = value
            continue
        scaled = (value - rest) / max(1.0 - rest, 1e-6)
        out[name] = round(min(1.0, max(0.0, scaled)), 5)
    return out


class Recorder:
    """The frames of one calibration window: pure bookkeeping, fed on the loop."""

    def __init__(self) -> None:
        self.frames: list[dict[str, float]] = []
        self.nobody = 0
        self.several = 0

    def add(self, result: TrackingResult) -> None:
        faces = len(result.faces)
        if faces == 0:
            self.nobody += 1
        elif result.blendshapes is None:
            return  # a frame from before the model was switched on for this recording
        elif faces > 1:
            self.several += 1
        elif len(self.frames) < MAX_FRAMES:
            self.frames.append(result.blendshapes)

    def neutral(self, seconds: float, wall_ms: int) -> Neutral:
        """The median face, or ApiError(409) saying who was (not) in view."""
        single = len(self.frames)
        total = single + self.nobody + self.several
        if single < MIN_FRAMES or single < ONE_PERSON_SHARE * total:
            if total == 0:
                raise ApiError(409, "no tracking results arrived during the calibration")
            if self.several > self.nobody:
                raise ApiError(
                    409, "more than one person was in view: calibrate with one person only"
                )
            raise ApiError(409, "nobody was in view: face the camera with a neutral face")
        names = list(self.frames[0])
        values = np.array([[frame.get(n, 0.0) for n in names] for frame in self.frames])
        medians = np.round(np.median(values, axis=0), 5).tolist()
        return Neutral(
            blendshapes=dict(zip(names, medians, strict=True)),
            frames=single,
            seconds=seconds,
            ts=wall_ms,
        )


def refuse_unless_one_person(latest: TrackingResult | None) -> None:
    """Refuse at once, before any waiting, when the latest result shows nobody or several."""
    if latest is None or not latest.faces:
        raise ApiError(409, "nobody is in view: face the camera with a neutral face")
    if len(latest.faces) > 1:
        raise ApiError(409, "more than one person is in view: calibrate with one person only")


class Calibration:
    """The daemon's calibration: the neutral in use, the recording under way, the file."""

    def __init__(
        self, file: StateFile[Neutral] | None = None, *, lid_drift_correction: bool = False
    ) -> None:
        self._file = file
        self.lid_drift_correction = lid_drift_correction
        self.neutral: Neutral | None = None
        self._recorder: Recorder | None = None

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the persisted neutral is restored before tracking starts."""
        del app
        if self._file is not None:
            self.neutral = await self._file.load()
            if self.neutral is not None:
                log.info("calibration restored", extra={"frames": self.neutral.frames})
        yield

    @property
    def recording(self) -> bool:
        """A recording is under way (it needs live blendshapes: faced.demand)."""
        return self._recorder is not None

    # --- on the loop, for each live result --------------------------------------------

    def observe(self, result: TrackingResult) -> None:
        """Feed a raw result to the recording under way (if any)."""
        if self._recorder is not None:
            self._recorder.add(result)

    def apply(self, result: TrackingResult) -> TrackingResult:
        """The result with its primary face's blendshapes calibrated (unchanged without a
        neutral or a face), every face's lid drift corrected first when that is on."""
        neutral = self.neutral
        if result.blendshapes is None or not result.faces:
            return result
        if neutral is None and not self.lid_drift_correction:
            return result
        rest = neutral.blendshapes if neutral is not None else None
        faces = list(result.faces)
        if self.lid_drift_correction:
            # Others in view have no neutral of their own: the default rest serves them.
            faces = [
                face
                if face.blendshapes is None
                else msgspec.structs.replace(
                    face,
                    blendshapes=corrected_look_down(face.blendshapes, rest if i == 0 else None),
                )
                for i, face in enumerate(faces)
            ]
        shapes = faces[0].blendshapes
        assert shapes is not None  # the primary face's are the result's
        if rest is not None:
            shapes = calibrated(shapes, rest)
            faces[0] = msgspec.structs.replace(faces[0], blendshapes=shapes)
        return msgspec.structs.replace(
            result, faces=faces, blendshapes=shapes, calibrated=rest is not None
        )

    # --- the API's verbs --------------------------------------------------------------

    async def record(self, seconds: float, latest: TrackingResult | None) -> Neutral:
        """Record the neutral over ``seconds`` of live results, use it and persist it.
        ApiError: 409 while another recording runs, when nobody or several people are in
        view (at once, or over the window); 500 when it cannot be saved."""
        if self._recorder is not None:
            raise ApiError(409, "a calibration is already being recorded")
        refuse_unless_one_person(latest)
        recorder = self._recorder = Recorder()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._recorder = None
        neutral = recorder.neutral(seconds, int(time.time() * 1000))
        if self._file is not None:
            await self._file.save(neutral, "the calibration")
        self.neutral = neutral
        log.info("calibrated", extra={"frames": neutral.frames, "seconds": seconds})
        return neutral

    def state(self) -> CalibrationState:
        return CalibrationState(calibrated=self.neutral is not None, neutral=self.neutral)

    async def clear(self) -> bool:
        """Forget the neutral (and its file); whether there was one."""
        had = self.neutral is not None
        if self._file is not None:
            try:
                await asyncio.to_thread(self._file.path.unlink, missing_ok=True)
            except OSError as exc:
                raise ApiError(500, f"cannot remove {self._file.path}: {exc.strerror}") from None
        self.neutral = None
        return had


__all__ = [
    "Calibration",
    "CalibrationRequest",
    "CalibrationState",
    "Neutral",
    "Recorder",
    "calibrated",
    "refuse_unless_one_person",
]
