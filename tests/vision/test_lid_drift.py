"""eyeLookDown's drift on closing lids (mediapipe issue 4210) and faced.vision.lid_drift's
correction, on the real models' output.

The faces are real photographs whose upper lids faced.vision.synthetic.lower_eyelids
lowers, the gaze untouched (synthetic lids: no recording of half-closed eyes is available).
The drift is the model's own (bench/eye_lid_drift.py --reference: MediaPipe's Face
Landmarker gives the same scores); these tests pin that it is there, that calibration
alone leaves it, and that the correction takes it out without touching anything else: in
the pure function, in live results through the real daemon, and in a job's curves.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import pytest

from faced.calibration import Calibration, Neutral, calibrated
from faced.jobs import worker
from faced.jobs.store import Settings
from faced.keys import JOBS_KEY, LIVE_KEY
from faced.schemas.analysis import Analysis
from faced.schemas.jobs import JobOptions
from faced.schemas.tracking import TrackingResult
from faced.vision.lid_drift import corrected_look_down
from faced.vision.pipeline import FacePipeline
from faced.vision.synthetic import Image, Motion, load_photo, lower_eyelids, write_clip
from tests.helpers import until

ROOT: Final = Path(__file__).resolve().parents[2]
SIDES: Final = ("Left", "Right")
HALF_CLOSED: Final = 0.8
STILL: Final = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)


def _demo_face() -> Image:
    """The demo photo (eyes to the camera) upscaled so the lid edit has pixels to move."""
    photo = load_photo(ROOT / "models" / "demo_face.png")
    return np.ascontiguousarray(cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_CUBIC))


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline.load()


@pytest.fixture(scope="module")
def faces(pipeline: FacePipeline) -> dict[float, Image]:
    """The demo face with its lids at several closures, the gaze the same in each."""
    photo = _demo_face()
    landmarks = pipeline.analyze(photo, landmarks=True).landmarks
    assert landmarks is not None
    return {c: lower_eyelids(photo, landmarks, c) for c in (0.0, 0.4, HALF_CLOSED, 1.0)}


def _shapes(pipeline: FacePipeline, image: Image) -> dict[str, float]:
    shapes = pipeline.analyze(image).blendshapes
    assert shapes is not None
    return shapes


def test_closing_lids_raise_look_down_which_calibration_leaves_and_the_correction_removes(
    pipeline: FacePipeline, faces: dict[float, Image]
) -> None:
    neutral = _shapes(pipeline, faces[0.0])
    for closure in (HALF_CLOSED, 1.0):
        raw = _shapes(pipeline, faces[closure])
        calibrated_only = calibrated(raw, neutral)
        fixed = calibrated(corrected_look_down(raw, neutral), neutral)
        for side in SIDES:
            down = "eyeLookDown" + side
            # The model's drift: the same gaze reads as a look down once the lids close.
            assert raw[down] - neutral[down] > 0.2, (closure, side, raw[down], neutral[down])
            assert raw["eyeBlink" + side] > neutral["eyeBlink" + side] + 0.15
            assert calibrated_only[down] > 0.2  # calibration on the open eye leaves it
            assert fixed[down] < 0.08, (closure, side, fixed[down])
        # Only eyeLookDown changes: the rest, eyeBlink included, is the model's.
        changed = {n for n in raw if corrected_look_down(raw, neutral)[n] != raw[n]}
        assert changed <= {"eyeLookDownLeft", "eyeLookDownRight"}


def test_open_and_partly_lowered_lids_keep_the_open_eyes_look_down(
    pipeline: FacePipeline, faces: dict[float, Image]
) -> None:
    neutral = _shapes(pipeline, faces[0.0])
    # The open eye is the neutral: nothing to correct, with or without the neutral.
    assert corrected_look_down(neutral, neutral) == neutral
    assert corrected_look_down(neutral) == neutral  # its blink is under the default rest
    lowered = _shapes(pipeline, faces[0.4])
    for side in SIDES:
        down = "eyeLookDown" + side
        fixed = corrected_look_down(lowered, neutral)[down]
        assert fixed == pytest.approx(neutral[down], abs=0.08), (side, lowered[down], fixed)


def test_a_side_glance_loses_no_score_but_eye_look_down() -> None:
    pipeline = FacePipeline.load()
    lenna = load_photo(ROOT / "tests" / ".data" / "lenna.png")  # eyes up and to the side
    landmarks = pipeline.analyze(lenna, landmarks=True).landmarks
    assert landmarks is not None
    raw = _shapes(pipeline, lower_eyelids(lenna, landmarks, HALF_CLOSED))
    fixed = corrected_look_down(raw)
    assert raw["eyeLookInLeft"] > 0.1 and raw["eyeLookOutRight"] > 0.1  # the glance, faded
    for name in raw:
        if not name.startswith("eyeLookDown"):
            assert fixed[name] == raw[name]
        assert 0.0 <= fixed[name] <= raw[name]


def test_a_calibrated_live_result_is_corrected_with_the_neutrals_rest(
    pipeline: FacePipeline, faces: dict[float, Image]
) -> None:
    def result(image: Image) -> TrackingResult:
        analysis = pipeline.analyze(image)
        fields = {name: getattr(analysis, name) for name in Analysis.__struct_fields__}
        return TrackingResult(**fields, frame=1, ts=0, fps=30.0, latency_ms=0.0)

    neutral = _shapes(pipeline, faces[0.0])
    half_closed = result(faces[HALF_CLOSED])
    calibration = Calibration(lid_drift_correction=True)
    calibration.neutral = Neutral(blendshapes=neutral, frames=3, seconds=1.0, ts=0)
    fixed = calibration.apply(half_closed)
    assert fixed.calibrated and fixed.blendshapes is not None
    assert fixed.faces[0].blendshapes == fixed.blendshapes
    plain = Calibration()
    plain.neutral = calibration.neutral
    calibrated_only = plain.apply(half_closed).blendshapes
    assert calibrated_only is not None
    for side in SIDES:
        assert calibrated_only["eyeLookDown" + side] > 0.2
        assert fixed.blendshapes["eyeLookDown" + side] < 0.08
    # Without a neutral the correction still runs, on the default rest, uncalibrated.
    uncalibrated = Calibration(lid_drift_correction=True).apply(half_closed)
    assert not uncalibrated.calibrated and uncalibrated.blendshapes is not None
    assert uncalibrated.blendshapes == corrected_look_down(half_closed.blendshapes or {})


def test_missing_scores_pass_unchanged_and_the_neutral_sets_the_rest() -> None:
    assert corrected_look_down({"jawOpen": 0.5}) == {"jawOpen": 0.5}
    only_left = {"eyeBlinkLeft": 0.5, "eyeLookDownLeft": 0.6, "eyeLookDownRight": 0.6}
    out = corrected_look_down(only_left)
    assert out["eyeLookDownRight"] == 0.6 and out["eyeLookDownLeft"] < 0.6
    # A person whose open eye reads eyeBlink 0.5 has nothing to correct at 0.5.
    assert corrected_look_down(only_left, {"eyeBlinkLeft": 0.5}) == only_left


@pytest.fixture(scope="module")
def half_closed_clip(faces: dict[float, Image], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("lids")
    return write_clip(faces[HALF_CLOSED], directory / "half-closed.avi", 30, motion=STILL)


@pytest.mark.slow
async def test_live_results_and_jobs_are_corrected_once_the_setting_is_switched_on(
    faced_client: Any, half_closed_clip: Path, tmp_path: Path
) -> None:
    client = await faced_client(
        camera={"source": f"file:{half_closed_clip}"},
        vision={"blendshapes": "always"},
        server={"state_dir": str(tmp_path)},
    )
    live = client.app[LIVE_KEY].live
    assert live is not None
    await until(lambda: live.processed >= 15, what="tracking settled")
    raw = (await (await client.get("/api/tracking")).json())["blendshapes"]

    patch = {"vision": {"lid_drift_correction": True}}
    response = await client.patch("/api/system/config", json=patch)
    assert response.status == 200, await response.text()
    assert "vision.lid_drift_correction" in (await response.json())["applied"]
    seen = live.processed
    await until(lambda: live.processed >= seen + 3, what="results after the switch")
    result = await (await client.get("/api/tracking")).json()
    assert "calibrated" not in result  # corrected is not calibrated
    assert result["faces"][0]["blendshapes"] == result["blendshapes"]
    fixed = result["blendshapes"]
    for side in SIDES:
        down = "eyeLookDown" + side
        assert raw[down] > 0.3, raw  # the drift, as the model gives it
        assert raw[down] - fixed[down] > 0.2, (raw[down], fixed[down])
        for name in ("eyeBlink", "eyeLookIn", "eyeLookOut", "eyeLookUp"):
            assert fixed[name + side] == pytest.approx(raw[name + side], abs=0.05)
    # A job submitted now takes the setting along (its worker: the next test).
    jobs = client.app[JOBS_KEY]
    assert jobs.settings_of(JobOptions()).lid_drift_correction is True


def test_a_job_corrects_as_live_results_do(
    pipeline: FacePipeline, half_closed_clip: Path, tmp_path: Path
) -> None:
    curves = {}
    for correction in (False, True):
        out = tmp_path / str(correction)
        out.mkdir()
        settings = Settings(label="lids", lid_drift_correction=correction)
        worker.process(
            pipeline, half_closed_clip, out, settings,
            take=1, subject="box", progress=lambda share: None, cancelled=threading.Event(),
        )  # fmt: skip
        frames = json.loads((out / worker.CURVES_FILE).read_text())["frames"]
        curves[correction] = frames[-1]["blendshapes"]
    for side in SIDES:
        down = "eyeLookDown" + side
        assert curves[False][down] - curves[True][down] > 0.2
        assert curves[True][down] == corrected_look_down(curves[False])[down]
