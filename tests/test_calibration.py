"""faced.calibration's arithmetic and its recording's verdicts (pure: no daemon needed;
the routes are tested through the real daemon in tests/api/test_calibration.py)."""

from __future__ import annotations

import pytest

from faced.api.errors import ApiError
from faced.calibration import MIN_FRAMES, Recorder, calibrated


def test_calibrated_scores_are_relative_to_the_neutral_and_clamped() -> None:
    neutral = {"jawOpen": 0.2, "browInnerUp": 0.0, "eyeBlinkLeft": 1.0}
    raw = {"jawOpen": 0.6, "browInnerUp": 0.3, "eyeBlinkLeft": 1.0, "tongueOut": 0.4}
    out = calibrated(raw, neutral)
    assert out["jawOpen"] == pytest.approx(0.5)  # (0.6 - 0.2) / 0.8
    assert out["browInnerUp"] == pytest.approx(0.3)  # a zero neutral changes nothing
    assert out["eyeBlinkLeft"] == 0.0  # neutral 1: no division by zero
    assert out["tongueOut"] == 0.4  # not in the neutral: passes unchanged
    assert calibrated({"jawOpen": 0.1}, neutral)["jawOpen"] == 0.0  # below rest: clamped


class _Result:
    def __init__(self, faces: int, jaw: float = 0.0) -> None:
        self.faces = [object()] * faces  # the recorder counts them
        self.blendshapes = {"jawOpen": jaw} if faces else None


def test_recorder_takes_the_median_and_refuses_nobody_or_several() -> None:
    recorder = Recorder()
    for jaw in (0.1, 0.1, 0.9, 0.1, 0.2):  # a yawn on one frame does not count
        recorder.add(_Result(1, jaw))  # type: ignore[arg-type]
    recorder.add(_Result(0))  # type: ignore[arg-type]
    neutral = recorder.neutral(2.0, 0)
    assert neutral.blendshapes == {"jawOpen": 0.1} and neutral.frames == 5

    for faces, words in ((0, "nobody"), (2, "more than one person")):
        recorder = Recorder()
        for _ in range(10):
            recorder.add(_Result(faces))  # type: ignore[arg-type]
        for _ in range(MIN_FRAMES):
            recorder.add(_Result(1))  # type: ignore[arg-type]
        with pytest.raises(ApiError, match=words) as caught:
            recorder.neutral(2.0, 0)
        assert caught.value.status == 409
