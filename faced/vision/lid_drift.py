"""eyeLookDown on closing lids: MediaPipe's drift, and its correction (pure).

Owns the correction of ``eyeLookDownLeft``/``eyeLookDownRight`` for the lids' closure.
Does not own the scores (faced.vision.stages), the neutral (faced.calibration) or where the
correction is applied (faced.calibration for live results, faced.jobs.worker for jobs; the
setting is ``vision.lid_drift_correction``).
Why: MediaPipe's blendshape model reads a lowered upper lid as a downward gaze (mediapipe
issue 4210; "every blink reads as look down"): with the gaze held still, ``eyeLookDown*``
climbs with ``eyeBlink*`` as the lids close. A calibration cannot remove it: it subtracts
the open-eye rest, and the drift only appears as the lids close.

The correction subtracts the drift measured on the pipeline's own output
(``bench/eye_lid_drift.py``: the same faces, gaze fixed, upper lids lowered synthetically
by faced.vision.synthetic.lower_eyelids): ``eyeLookDown`` rises about
``LOOK_DOWN_PER_BLINK`` times as fast as ``eyeBlink`` above the eye's resting blink::

    eyeLookDown' = max(0, eyeLookDown - LOOK_DOWN_PER_BLINK * max(0, eyeBlink - rest))

``rest`` is the person's neutral ``eyeBlink`` when calibrated, else ``DEFAULT_REST_BLINK``.
Only ``eyeLookDown`` is corrected: ``eyeLookIn``/``Out``/``Up`` do not climb but fade
toward 0 as the iris disappears, and no per-frame arithmetic brings back a gaze the
picture no longer shows. A real downward look lowers the lids too, so with the correction
on, a look down while squinting reads weaker than MediaPipe's: the setting is off by
default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

LOOK_DOWN_PER_BLINK: Final = 1.3
"""Slope of eyeLookDown over eyeBlink above rest, gaze fixed (least squares over the
straight-gaze photos: ``bench/eye_lid_drift.py`` prints it)."""
DEFAULT_REST_BLINK: Final = 0.1
"""An open eye's eyeBlink when no neutral says the person's own (MediaPipe reads 0 to 0.3
on open eyes at rest, most faces under 0.1)."""
SIDES: Final = ("Left", "Right")


def corrected_look_down(
    shapes: Mapping[str, float], neutral: Mapping[str, float] | None = None
) -> dict[str, float]:
    """``shapes`` with each side's eyeLookDown freed of its lid drift; a side whose
    eyeBlink or eyeLookDown is missing passes unchanged."""
    out = dict(shapes)
    for side in SIDES:
        blink = shapes.get("eyeBlink" + side)
        down = shapes.get("eyeLookDown" + side)
        if blink is None or down is None:
            continue
        rest = DEFAULT_REST_BLINK if neutral is None else neutral.get("eyeBlink" + side)
        if rest is None:
            rest = DEFAULT_REST_BLINK
        drift = LOOK_DOWN_PER_BLINK * max(0.0, blink - rest)
        out["eyeLookDown" + side] = round(max(0.0, down - drift), 5)
    return out


__all__ = ["DEFAULT_REST_BLINK", "LOOK_DOWN_PER_BLINK", "corrected_look_down"]
