"""The held-out check of `faced models build`: how far a derived model strays from the float
one, in each model's own output units, and the limits it must stay within.

Owns ``LIMITS`` (per role: detector scores, landmark displacement in % of the inter-ocular
distance, blendshape scores; and the landmark model's presence and tongueOut scores), the
error measures and ``check`` (a candidate against the reference on held-out inputs).
Does not own choosing a recipe by it (faced.vision.build.derive) or the inputs.
Why: a quantized model is kept only when it is measurably as good as the float one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from faced.vision.runtime import InferenceModel


@dataclass(frozen=True, slots=True)
class Limit:
    """The most a quantized model may differ from the float one on held-out inputs, in the
    model's own output units; beyond it static int8 gives way to dynamic-range int8."""

    mean: float
    max: float
    unit: str


# Detector: sigmoid scores of anchors the float model scores > 0.1 (box offsets follow the
# scores closely); tight, because a face scored near the 0.5 threshold must not flip.
# Landmarks: a face's mean point displacement in % of its inter-ocular distance; the required
# bound is 3 %, but the blendshape model amplifies small shifts of the eye and iris points
# (a weight-only int8 landmark model at 1.4 % moved blendshapes by up to 0.2), so the limit
# is a third of it. Blendshapes: the scores themselves (the required bounds are 0.03 mean,
# 0.15 max; about half of each leaves room for the landmark error).
LIMITS: Final = {
    "detector": Limit(mean=0.01, max=0.05, unit="score"),
    "landmarks": Limit(mean=1.0, max=1.5, unit="% inter-ocular distance, per-face mean"),
    "blendshapes": Limit(mean=0.015, max=0.08, unit="score"),
}
# The landmark model's two scores: the face-presence probability and tongueOut (a blendshape
# the landmark model computes itself, and its most fragile output under int8). Bounded like
# the blendshape scores.
LANDMARK_SCORES_LIMIT: Final = Limit(mean=0.015, max=0.08, unit="presence, tongueOut")


def _sigmoid(x: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -100, 100)))


def errors(
    role: str, reference: list[npt.NDArray[Any]], other: list[npt.NDArray[Any]]
) -> npt.NDArray[np.float64]:
    """Per-value absolute errors of ``other`` against ``reference`` in LIMITS' units."""
    if role == "detector":
        names_ref = [o.size for o in reference]
        scores = int(np.argmin(names_ref))  # classificators [1,896,1] is the smaller output
        ref, out = _sigmoid(reference[scores].ravel()), _sigmoid(other[scores].ravel())
        keep = ref > 0.1
        return np.abs(ref[keep] - out[keep]) if keep.any() else np.zeros(1)
    if role == "landmarks":
        big = int(np.argmax([o.size for o in reference]))
        ref = reference[big].reshape(-1, 3)[:, :2].astype(np.float64)
        out = other[big].reshape(-1, 3)[:, :2].astype(np.float64)
        # The face's mean displacement in % of its inter-ocular distance (iris centres
        # 468, 473), as the bound is stated.
        iod = float(np.hypot(*(ref[468] - ref[473])))
        return np.array([100.0 * np.hypot(*(ref - out).T).mean() / max(iod, 1e-6)])
    return np.abs(reference[0].astype(np.float64) - other[0].astype(np.float64)).ravel()


def landmark_score_errors(
    reference: list[npt.NDArray[Any]], other: list[npt.NDArray[Any]]
) -> npt.NDArray[np.float64]:
    """|d| of the landmark model's presence probability ([1,1,1,1] logit) and tongueOut
    score ([1,1]), the outputs ``errors`` does not see."""
    found = []
    for index, output in enumerate(reference):
        if output.size != 1:
            continue
        ref, out = output.astype(np.float64).ravel(), other[index].astype(np.float64).ravel()
        if output.ndim == 4:  # the presence logit
            ref, out = _sigmoid(ref), _sigmoid(out)
        found.append(np.abs(ref - out))
    return np.concatenate(found) if found else np.zeros(0)


@dataclass(frozen=True, slots=True)
class Check:
    mean: float
    max: float
    samples: int
    unit: str
    scores: tuple[float, float] | None = None
    """The landmark model's presence and tongueOut: (mean |d|, max |d|)."""

    def within(self, limit: Limit) -> bool:
        scores_ok = self.scores is None or (
            self.scores[0] <= LANDMARK_SCORES_LIMIT.mean
            and self.scores[1] <= LANDMARK_SCORES_LIMIT.max
        )
        return self.mean <= limit.mean and self.max <= limit.max and scores_ok

    def describe(self) -> str:
        text = (
            f"held-out {self.samples} inputs vs fp32: mean |d| {self.mean:.4g}, "
            f"max {self.max:.4g} ({self.unit})"
        )
        if self.scores is not None:
            text += (
                f"; {LANDMARK_SCORES_LIMIT.unit}: mean |d| {self.scores[0]:.4g}, "
                f"max {self.scores[1]:.4g}"
            )
        return text


def check(
    role: str,
    reference: InferenceModel,
    candidate: InferenceModel,
    samples: Sequence[npt.NDArray[np.float32]],
) -> Check:
    found, scores = [], []
    for x in samples:
        ours, theirs = reference.run([x]), candidate.run([x])
        found.append(errors(role, ours, theirs))
        if role == "landmarks":
            scores.append(landmark_score_errors(ours, theirs))
    values = np.concatenate(found) if found else np.zeros(1)
    score_values = np.concatenate(scores) if scores else np.zeros(0)
    return Check(
        float(values.mean()),
        float(values.max()),
        len(samples),
        LIMITS[role].unit,
        (float(score_values.mean()), float(score_values.max())) if score_values.size else None,
    )
