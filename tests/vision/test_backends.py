"""Back ends and precisions give the same faces; bad derived models and missing back ends
stop startup with one clear line.

The derived
models are real: `make test` runs `faced models build` (cached by input hash) before pytest,
so a missing one is a failure naming that command, never a skip. Bounds are the issue's:
int8 vs fp32 blendshapes mean |d| <= 0.03 and max <= 0.15, landmarks within 3 % of the
inter-ocular distance, head rotation within 4 degrees; ONNX fp32 vs LiteRT fp32 mean
|d| <= 0.005.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from faced.vision import variants
from faced.vision.models import ModelError, ModelStore, default_model_dir
from faced.vision.pipeline import (
    BLENDSHAPES_FILE,
    DETECTOR_FILE,
    FULL_RANGE_FILE,
    GEOMETRY_FILE,
    LANDMARKS_FILE,
    DetectorMode,
    FacePipeline,
    StageTimes,
    model_files,
)
from faced.vision.runtime import Backend, BackendUnavailable, Precision, Runtime
from tests.data import FACE_PHOTOS, load_rgb
from tests.data import path as data_path

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUNDLE = (DETECTOR_FILE, LANDMARKS_FILE, BLENDSHAPES_FILE)


@dataclass(frozen=True)
class Bounds:
    blend_mean: float
    blend_max: float
    landmarks_iod: float  # a face's mean landmark displacement, fraction of its IOD
    rotation_deg: float


@dataclass
class Differences:
    """Face-by-face differences of one result from its reference, checked against Bounds."""

    blendshapes: list[np.ndarray[Any, Any]] = field(default_factory=list)
    displacement: list[float] = field(default_factory=list)  # per face, fraction of IOD
    rotation: list[float] = field(default_factory=list)  # per face, largest angle, degrees

    def add(self, want: Any, got: Any, size: np.ndarray[Any, Any]) -> None:
        """``want``/``got``: two faces (or a tracker's results) with landmarks, in an image
        of ``size`` (width, height) pixels."""
        a = np.array(list(want.blendshapes.values()))
        b = np.array([got.blendshapes[k] for k in want.blendshapes])
        self.blendshapes.append(np.abs(a - b))
        p = np.array(want.landmarks)[:, :2] * size
        q = np.array(got.landmarks)[:, :2] * size
        iod = np.linalg.norm(p[468] - p[473])
        self.displacement.append(float(np.linalg.norm(p - q, axis=1).mean() / iod))
        self.rotation.append(
            max(
                abs(want.head.yaw - got.head.yaw),
                abs(want.head.pitch - got.head.pitch),
                abs(want.head.roll - got.head.roll),
            )
        )

    def check(self, bounds: Bounds, what: str) -> None:
        blend = np.concatenate(self.blendshapes)
        figures = (
            f"{what}: blendshapes mean |d| {blend.mean():.4f} max {blend.max():.4f}; "
            f"landmarks {max(self.displacement):.2%} IOD; rotation {max(self.rotation):.2f} deg"
        )
        assert blend.mean() <= bounds.blend_mean, figures
        assert blend.max() <= bounds.blend_max, figures
        assert max(self.displacement) <= bounds.landmarks_iod, figures
        assert max(self.rotation) <= bounds.rotation_deg, figures


INT8 = Bounds(blend_mean=0.03, blend_max=0.15, landmarks_iod=0.03, rotation_deg=4.0)
ONNX_FP32 = Bounds(blend_mean=0.005, blend_max=0.05, landmarks_iod=0.005, rotation_deg=0.5)
CASES = [
    pytest.param("onnxruntime", "fp32", ONNX_FP32, id="onnxruntime-fp32"),
    pytest.param("litert", "int8", INT8, id="litert-int8"),
    pytest.param("onnxruntime", "int8", INT8, id="onnxruntime-int8"),
]


def _bundle_copy(directory: Path, *extra: str) -> Path:
    """A model directory holding copies of the source models (and ``extra`` files)."""
    directory.mkdir()
    source = default_model_dir()
    for name in (*model_files("auto"), GEOMETRY_FILE, *extra):
        shutil.copy(source / name, directory / name)
    return directory


def _build_python() -> Path:
    # The build tools have a venv of their own (the Makefile's BUILD_VENV): TensorFlow is
    # kept out of the test venv, where MediaPipe would import it.
    build_python = REPO / ".venv-build" / "bin" / "python"
    assert build_python.is_file(), f"{build_python} missing: run `make models-build`"
    return build_python


def _models_build(
    directory: Path, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`faced models build --dir DIRECTORY [ARGS]` in the build venv."""
    return subprocess.run(
        [str(_build_python()), "-m", "faced", "models", "build", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
    )


def _store() -> ModelStore:
    store = ModelStore(default_model_dir())
    record = variants.record_path(store)
    assert record.is_file(), f"{record} missing: run `make models-build`"
    return store


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray[Any, Any]]:
    return [load_rgb(name) for name in FACE_PHOTOS]


@pytest.fixture(scope="module")
def reference(photos: list[np.ndarray[Any, Any]]) -> list[Any]:
    pipeline = FacePipeline(_store(), num_faces=2, runtime=Runtime("litert", "fp32"))
    return [pipeline.analyze(photo, landmarks=True) for photo in photos]


@pytest.mark.parametrize(("backend", "precision", "bounds"), CASES)
def test_back_end_gives_the_same_faces(
    backend: str,
    precision: str,
    bounds: Bounds,
    photos: list[np.ndarray[Any, Any]],
    reference: list[Any],
) -> None:
    runtime = Runtime(backend, precision)  # type: ignore[arg-type]
    pipeline = FacePipeline(_store(), num_faces=2, runtime=runtime)
    assert {m.backend.split("/")[0] for m in runtime.loaded} == {backend}
    differences = Differences()
    for name, photo, expected in zip(FACE_PHOTOS, photos, reference, strict=True):
        got = pipeline.analyze(photo, landmarks=True)
        assert len(got.faces) == len(expected.faces), f"{name}: face count differs"
        size = np.array([expected.image.width, expected.image.height], dtype=np.float64)
        for want, face in zip(expected.faces, got.faces, strict=True):
            differences.add(want, face, size)
    differences.check(
        bounds,
        f"{backend}/{precision} vs litert/fp32 on {len(FACE_PHOTOS)} photos "
        f"(files {[m.file for m in runtime.loaded]})",
    )


@pytest.mark.parametrize(
    ("backend", "precision", "name"),
    [
        ("litert", "fp32", LANDMARKS_FILE),  # straight into LiteRT's input buffer
        ("litert", "int8", BLENDSHAPES_FILE),  # the int8 file (its input stays float)
        ("onnxruntime", "fp32", LANDMARKS_FILE),
    ],
)
def test_run_filling_gives_what_run_gives(backend: str, precision: str, name: str) -> None:
    """The port's two ways in (faced.vision.runtime.InferenceModel): inputs written by the
    caller into the arrays run_filling hands it, and inputs made first, then run. Same
    outputs, bit for bit, on each back end's path, twice (buffers are reused)."""
    model = Runtime(backend, precision).open(_store(), name)  # type: ignore[arg-type]
    rng = np.random.default_rng(7)
    for _ in range(2):
        made = [rng.random(t.shape, dtype=np.float32).astype(t.dtype) for t in model.inputs]
        want = [np.array(o, copy=True) for o in model.run(made)]
        handed: list[tuple[tuple[int, ...], Any]] = []

        def fill(arrays: Any, made: list[Any] = made, handed: list[Any] = handed) -> None:
            handed.extend((a.shape, a.dtype) for a in arrays)
            for array, value in zip(arrays, made, strict=True):
                array[...] = value

        got = model.run_filling(fill)
        assert handed == [(t.shape, t.dtype) for t in model.inputs]
        for w, g in zip(want, got, strict=True):
            np.testing.assert_array_equal(g, w)


def test_litert_int8_tracks_the_clip_like_fp32() -> None:
    """VIDEO mode on the benchmark's kind of clip (a photo moving, zooming and turning;
    tracking, smoothing): LiteRT int8 stays within the issue's bounds of fp32 frame by frame,
    so the speed figures compare like with like."""
    from faced.vision.synthetic import load_photo, synthetic_frames  # noqa: PLC0415

    frames = list(synthetic_frames(load_photo(data_path("lenna.png")), 90))
    store = _store()
    trackers = [
        FacePipeline(store, runtime=Runtime("litert", precision)).tracker()
        for precision in ("fp32", "int8")
    ]
    differences = Differences()
    for index, frame in enumerate(frames):
        want, got = (t.process(frame, index * 33, landmarks=True) for t in trackers)
        assert len(want.faces) == len(got.faces) == 1, f"frame {index}"
        size = np.array([want.image.width, want.image.height], dtype=np.float64)
        differences.add(want, got, size)
    differences.check(INT8, f"litert/int8 vs fp32 on {len(frames)} clip frames")


def test_mixed_recipe_refuses_a_model_without_its_float_ops() -> None:
    """The blendshape model's mixed int8 recipe keeps its point-embedding conv in float by
    name; on a model without that op (here the landmark model) the build stops rather than
    quantizing everything, and on the blendshape model the float rule comes last (it wins)."""
    build_python = _build_python()
    script = """
import sys
from faced.vision import build
from faced.vision.models import ModelStore, default_model_dir
store = ModelStore(default_model_dir())
name = "dynamic_wi8_afp32+float_point_embedding"
rules = build.litert_recipe(build.float32_model(store.read("face_blendshapes.tflite")), name)
print("last rule", rules[-1]["regex"], rules[-1]["algorithm_key"])
try:
    build.litert_recipe(build.float32_model(store.read("face_landmarks_detector.tflite")), name)
except build.BuildError as exc:
    print("refused:", exc)
"""
    done = subprocess.run(
        [str(build_python), "-c", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "last rule MlpMixerGeneral/conv2d/ no_quantize" in done.stdout, done.stdout
    assert "refused: recipe dynamic_wi8_afp32+float_point_embedding: no op matches" in done.stdout


class _TongueDrift:
    """The landmark model with its tongueOut score moved by ``by``: a test back end of the
    runtime port (faced.vision.runtime.InferenceModel), everything else the real model's."""

    def __init__(self, model: Any, by: float) -> None:
        self._model, self._by = model, by
        self.inputs, self.outputs = model.inputs, model.outputs

    def run(self, inputs: Any) -> list[Any]:
        return self._drifted(self._model.run(inputs))

    def run_filling(self, fill: Any) -> list[Any]:
        return self._drifted(self._model.run_filling(fill))

    def _drifted(self, outputs: list[Any]) -> list[Any]:
        outputs = [np.array(o, copy=True) for o in outputs]
        tongue = next(o for o in outputs if o.size == 1 and o.ndim == 2)
        tongue += np.float32(self._by)
        return outputs


def test_the_landmark_check_covers_presence_and_tongue(photos: list[Any]) -> None:
    """The build's held-out check of a landmark model weighs its presence and tongueOut
    scores besides its points: a candidate whose tongue score alone drifts is refused."""
    from faced.vision import build  # noqa: PLC0415

    store = _store()
    pipeline = FacePipeline(store, num_faces=2, runtime=Runtime("litert", "fp32"))
    crops = []
    for photo in photos:
        frame = np.ascontiguousarray(photo)
        for roi in pipeline.detect_rois(frame, 2, StageTimes()):
            crops.append(pipeline.landmark_model.crop(frame, roi).copy())
    assert len(crops) >= len(photos)
    reference = pipeline.landmark_model.model
    onnx = Runtime("onnxruntime", "fp32").open(store, LANDMARKS_FILE)
    faithful = build.check("landmarks", reference, onnx, crops)
    assert faithful.scores is not None and faithful.scores[1] < 1e-3, faithful.describe()
    assert faithful.within(build.LIMITS["landmarks"])
    assert "presence, tongueOut: mean |d|" in faithful.describe()
    drifted = build.check("landmarks", reference, _TongueDrift(reference, 0.2), crops)
    assert drifted.mean == 0.0 and drifted.scores is not None
    assert drifted.scores[1] == pytest.approx(0.2, abs=1e-6)
    assert not drifted.within(build.LIMITS["landmarks"])


def test_int8_runs_the_recorded_files_and_only_falls_back_where_the_record_says() -> None:
    """What int8 runs is what derived.toml says: the int8 file when the build kept one within
    the limits, else (recorded as unavailable, with the check that failed) the float one."""
    store = _store()
    record = variants.load_record(variants.record_path(store))
    for backend in ("litert", "onnxruntime"):
        runtime = Runtime(backend, "int8")  # type: ignore[arg-type]
        FacePipeline(store, runtime=runtime)
        for name, loaded in zip(BUNDLE, runtime.loaded, strict=True):
            entry = record[variants.variant_name(name, backend, "int8")]
            if entry.available:
                assert loaded.file == entry.name
                assert loaded.sha256 == entry.sha256
            else:
                assert loaded.file == variants.variant_name(name, backend, "fp32")
                assert entry.check, "an unavailable entry must say which check failed"


# Every derived combination the full-range detector can be asked for (fp32 LiteRT is the
# bundle file itself). Before the build had a target for it, each of these stopped startup
# with "face_detection_full_range.…: not in derived.toml; run faced models build".
DERIVED = [
    pytest.param("litert", "int8", id="litert-int8"),
    pytest.param("onnxruntime", "fp32", id="onnxruntime-fp32"),
    pytest.param("onnxruntime", "int8", id="onnxruntime-int8"),
]


@pytest.mark.parametrize("detector", ["full", "auto"])
@pytest.mark.parametrize(("backend", "precision"), DERIVED)
def test_full_range_detector_runs_on_every_derived_path(
    backend: Backend,
    precision: Precision,
    detector: DetectorMode,
    photos: list[np.ndarray[Any, Any]],
) -> None:
    """vision.detector = full/auto starts with int8 and on ONNX Runtime, runs the file the
    record names for the full-range model, and finds the faces the fp32 pipeline finds."""
    store = _store()
    record = variants.load_record(variants.record_path(store))
    runtime = Runtime(backend, precision)
    pipeline = FacePipeline(store, num_faces=2, runtime=runtime, detector=detector)
    loaded = {m.file: m for m in runtime.loaded}
    entry = record[variants.variant_name(FULL_RANGE_FILE, backend, precision)]
    name, sha256 = entry.name, entry.sha256
    if not entry.available:  # int8 without a kept recipe: the float file runs
        assert entry.check, "an unavailable entry must say which check failed"
        name = variants.variant_name(FULL_RANGE_FILE, backend, "fp32")
        # fp32 LiteRT is the verified bundle file (manifest.toml), the rest are derived.
        sha256 = record[name].sha256 if name in record else store.manifest.file(name).sha256
    assert name in loaded, sorted(loaded)
    assert loaded[name].sha256 == sha256
    reference = FacePipeline(
        store, num_faces=2, runtime=Runtime("litert", "fp32"), detector=detector
    )
    found = [len(pipeline.analyze(photo).faces) for photo in photos]
    expected = [len(reference.analyze(photo).faces) for photo in photos]
    assert found == expected, dict(zip(FACE_PHOTOS, found, strict=True))
    assert sum(found) >= 4, dict(zip(FACE_PHOTOS, found, strict=True))


@pytest.mark.parametrize(("backend", "precision"), DERIVED)
async def test_auto_detector_serves_faces_with_derived_models(
    faced_client: Any, backend: str, precision: str
) -> None:
    """The real app with vision.detector = auto on each derived path starts, reports the
    full-range file in /health and finds both faces in breakingbad.jpg through /v1/analyze."""
    client = await faced_client(
        vision={"backend": backend, "precision": precision, "detector": "auto", "num_faces": 2}
    )
    response = await client.get("/health")
    assert response.status == 200, await response.text()
    files = (await response.json())["model"]["files"]
    assert any(name.startswith("face_detection_full_range.") for name in files), files
    photo = await asyncio.to_thread(lambda: data_path("breakingbad.jpg").read_bytes())
    response = await client.post("/v1/analyze", data=photo, headers={"Content-Type": "image/jpeg"})
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["face_found"] is True, result
    assert len(result["faces"]) == 2, result


def _copy_models(target: Path) -> Path:
    source = default_model_dir()
    target.mkdir()
    for name in (*model_files("auto"), GEOMETRY_FILE):
        shutil.copy(source / name, target / name)
    for entry in variants.load_record(variants.record_path(ModelStore(source))).values():
        if entry.available:
            shutil.copy(source / entry.name, target / entry.name)
    return target


def _first_available(backend: str) -> str:
    record = variants.load_record(variants.record_path(_store()))
    for entry in record.values():
        if entry.backend == backend and entry.available and entry.precision == "fp32":
            return entry.name
    for entry in record.values():
        if entry.backend == backend and entry.available:
            return entry.name
    raise AssertionError(f"no derived {backend} model recorded")


def test_corrupt_derived_model_names_the_file_and_the_fix(tmp_path: Path) -> None:
    directory = _copy_models(tmp_path / "models")
    name = _first_available("onnxruntime")
    path = directory / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        FacePipeline(ModelStore(directory), runtime=Runtime("onnxruntime", "fp32"))
    message = str(caught.value)
    assert str(path) in message
    assert "corrupt or mismatched" in message
    assert "faced models build" in message


def test_missing_derived_model_names_the_build_command(tmp_path: Path) -> None:
    directory = _copy_models(tmp_path / "models")
    (directory / "face_landmarks_detector.onnx").unlink()
    with pytest.raises(ModelError, match=r"face_landmarks_detector\.onnx: missing.*faced models"):
        FacePipeline(ModelStore(directory), runtime=Runtime("onnxruntime", "fp32"))


async def test_corrupt_derived_model_stops_faced_serve_with_exit_78(
    run_faced: Any, tmp_path: Path
) -> None:
    directory = await asyncio.to_thread(_copy_models, tmp_path / "models")
    name = await asyncio.to_thread(_first_available, "onnxruntime")
    await asyncio.to_thread((directory / name).write_bytes, b"not a model")
    faced = await run_faced(
        config_text=(
            f'[vision]\nmodel_dir = "{directory}"\nbackend = "onnxruntime"\nprecision = "fp32"\n'
        ),
        wait=False,
    )
    assert await faced.wait_exit(60) == 78, faced.stderr
    assert name in faced.stderr and "faced models build" in faced.stderr
    assert "Traceback" not in faced.stderr


async def test_missing_onnxruntime_is_one_line_saying_what_to_install(
    run_faced: Any, tmp_path: Path
) -> None:
    # The packaging boundary: an interpreter on which `import onnxruntime` fails, as on an
    # appliance installed without the `onnx` extra.
    blocker = tmp_path / "no-onnxruntime" / "onnxruntime"
    await asyncio.to_thread(blocker.mkdir, parents=True)
    await asyncio.to_thread(
        (blocker / "__init__.py").write_text, 'raise ImportError("No module named onnxruntime")\n'
    )
    faced = await run_faced(
        config_text='[vision]\nbackend = "onnxruntime"\n',
        env={"PYTHONPATH": f"{blocker.parent}:{REPO}"},
        wait=False,
    )
    assert await faced.wait_exit(60) == 78, faced.stderr
    errors = [line for line in faced.stderr_lines if "onnxruntime" in line]
    assert len(errors) == 1, faced.stderr
    assert "pip install 'faced[onnx]'" in errors[0]


def test_gpu_provider_missing_here_is_a_clear_error() -> None:
    import onnxruntime  # noqa: PLC0415

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.fail("this test expects a CPU-only onnxruntime (the CI machine's)")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        FacePipeline(_store(), runtime=Runtime("onnxruntime", "fp32", onnx_provider="cuda"))


def test_unknown_back_end_is_refused_by_config(tmp_path: Path) -> None:
    config = tmp_path / "faced.toml"
    config.write_text('[vision]\nbackend = "tensorflow"\n')
    done = subprocess.run(
        [sys.executable, "-m", "faced", "config", "check", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 78, done.stderr
    assert "vision.backend" in done.stderr


async def test_health_reports_back_end_precision_and_hashes(faced_client: Any) -> None:
    client = await faced_client(vision={"backend": "onnxruntime", "precision": "fp32"})
    response = await client.get("/health")
    assert response.status == 200
    model = (await response.json())["model"]
    assert model["backend"] == "onnxruntime"
    assert model["precision"] == "fp32"
    record = await asyncio.to_thread(lambda: variants.load_record(variants.record_path(_store())))
    for name in BUNDLE:
        file = variants.variant_name(name, "onnxruntime", "fp32")
        assert model["files"][file]["sha256"] == record[file].sha256
        assert model["files"][file]["runs_on"] == "onnxruntime/cpu"


def test_models_list_reports_what_the_config_runs(tmp_path: Path) -> None:
    config = tmp_path / "faced.toml"
    config.write_text('[vision]\nbackend = "onnxruntime"\nprecision = "fp32"\n')
    done = subprocess.run(
        [sys.executable, "-m", "faced", "models", "list", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "vision.backend = onnxruntime, vision.precision = fp32" in done.stdout
    record = variants.load_record(variants.record_path(_store()))
    for name in BUNDLE:
        file = variants.variant_name(name, "onnxruntime", "fp32")
        assert f"{file}" in done.stdout and record[file].sha256 in done.stdout


# The blendshape model: the smallest build with two files kept (int8 LiteRT and ONNX fp32),
# a quarter of the whole build's time. `make test` builds every model before pytest on a
# fresh checkout (make models-build), which refuses bytes that differ from the record.
ONE_MODEL = BLENDSHAPES_FILE


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(
    "only",
    [
        pytest.param((ONE_MODEL,), id="one-model"),
        pytest.param((), id="every-model", marks=pytest.mark.long_only),
    ],
)
def test_build_is_reproducible_byte_for_byte(tmp_path: Path, only: tuple[str, ...]) -> None:
    """A fresh `faced models build` into an empty directory makes exactly the bytes
    models/derived.toml records (it exits 1 naming the files that differ otherwise).
    `--only MODEL` builds that model's files alone and leaves the record and the up-to-date
    stamp unwritten; the whole build (every model) runs under `make soak`."""
    directory = _bundle_copy(tmp_path / "models")
    source = default_model_dir()
    done = _models_build(directory, *(f"--only={name}" for name in only))
    assert done.returncode == 0, done.stderr[-2000:]
    record = variants.load_record(variants.record_path(ModelStore(source)))
    checked = [
        entry for entry in record.values() if entry.available and (not only or entry.source in only)
    ]
    assert checked
    for entry in checked:
        assert variants.sha256((directory / entry.name).read_bytes()) == entry.sha256
    derived = sorted(p.name for p in directory.iterdir() if p.name in record)
    assert derived == sorted(entry.name for entry in checked)
    assert (directory / ".derived-build.json").exists() == (not only)


def test_build_only_refuses_an_unknown_model_a_partial_record_and_no_record(
    tmp_path: Path,
) -> None:
    """`--only` names a bundle model the build derives from, else exit 2 naming them all;
    with `--record` (the record describes the whole build) exit 2 too; with no record of
    that model's files (nothing to check them against) exit 1. Nothing is built."""
    directory = _bundle_copy(tmp_path / "models", "manifest.toml")
    unknown = _models_build(directory, "--only", "face_geometry.tflite")
    assert unknown.returncode == 2, unknown.stderr
    assert unknown.stderr.strip() == (
        "faced models build: --only face_geometry.tflite: not a bundle model the build "
        f"derives from (one of {DETECTOR_FILE}, {FULL_RANGE_FILE}, {LANDMARKS_FILE}, "
        f"{BLENDSHAPES_FILE})"
    )
    partial = _models_build(directory, "--only", BLENDSHAPES_FILE, "--record")
    assert partial.returncode == 2, partial.stderr
    assert partial.stderr.strip() == (
        "faced models build: --record rewrites the whole record; drop --only"
    )
    # Installed (outside the checkout), the record is the model directory's own: none here.
    site = tmp_path / "site"
    shutil.copytree(REPO / "faced", site / "faced", ignore=shutil.ignore_patterns("__pycache__"))
    unrecorded = _models_build(
        directory,
        "--only",
        BLENDSHAPES_FILE,
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(site)},
    )
    assert unrecorded.returncode == 1, unrecorded.stderr
    assert unrecorded.stderr.strip() == (
        f"faced models build: no files derived from {BLENDSHAPES_FILE} in "
        f"{directory / variants.DERIVED_NAME}; nothing built. Run the whole build (without "
        "--only) to record them."
    )
    assert "calibration" not in unknown.stdout + partial.stdout + unrecorded.stdout
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [*model_files("auto"), GEOMETRY_FILE, "manifest.toml"]
    )


@pytest.mark.timeout(1800)
def test_build_differing_from_the_record_twice_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    """When a built file's bytes differ from the record, `faced models build` builds once
    more (a passing fluke must not fail it); when they differ again it refuses: exit 1, one
    line naming the file and `faced models build --record`, nothing written. Here the record
    gives face_detector.onnx the sha256 of face_blendshapes.onnx, so both builds differ;
    only the short-range detector is built (`--only`; the rule is the same for every file,
    and that model's build is the quickest: its int8 files are recorded as not built, which
    each build must match too).

    The build runs from a copy of the faced package outside the checkout, as an installed
    faced does: its record is then the model directory's own derived.toml, which this test
    may edit (the checkout's is shared)."""
    site = tmp_path / "site"
    shutil.copytree(REPO / "faced", site / "faced", ignore=shutil.ignore_patterns("__pycache__"))
    directory = _bundle_copy(tmp_path / "models", "manifest.toml")
    source = default_model_dir()
    checkout_record = variants.record_path(ModelStore(source))
    entries = variants.load_record(checkout_record)
    victim, other = entries["face_detector.onnx"], entries["face_blendshapes.onnx"]
    text = checkout_record.read_text(encoding="utf-8")
    wrong = text.replace(f'\nsha256 = "{victim.sha256}"', f'\nsha256 = "{other.sha256}"')
    assert wrong.count(other.sha256) == text.count(other.sha256) + 1
    record = directory / variants.DERIVED_NAME
    record.write_text(wrong, encoding="utf-8")

    done = _models_build(
        directory,
        "--only",
        DETECTOR_FILE,
        cwd=site,
        env={**os.environ, "PYTHONPATH": str(site)},
    )

    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout.count("calibration: ") == 2, "the build did not run a second time"
    assert "face_detector.onnx differ from the record; building once more" in done.stderr
    refusal = done.stderr.strip().splitlines()[-1]
    # Only the file the record misstates is named: every other one came out as recorded.
    assert refusal.startswith(f"faced models build: face_detector.onnx differ from {record} ")
    assert "nothing written" in refusal and "`faced models build --record`" in refusal
    assert record.read_text(encoding="utf-8") == wrong
    written = sorted(
        p.name for p in directory.iterdir() if p.name.endswith((".onnx", ".int8.tflite"))
    )
    assert written == []
    assert not (directory / ".derived-build.json").exists()
