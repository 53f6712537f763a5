"""`faced bench pipeline`: where a frame's time goes, detection and tracking apart.

Owns: this measurement and its table. Does not own: the pipeline (faced.vision.pipeline)
or the clip (faced.vision.synthetic). Runs the pipeline on a synthetic moving-face clip
(faced.vision.synthetic: a test photograph drifting, zooming and tilting, generated frame by
frame, never stored), first in IMAGE mode
(detector on every frame) then in VIDEO mode (tracking), and prints per-stage latency
(median / p90), frames per second and peak RSS. The same run measures a baseline: the two
model invocations alone on the same crops, i.e. the floor any implementation pays, so the
pipeline's own overhead reads directly off the table. Tracking keeps the landmarks, as the
daemon's live path does for perception (faced.perception); what perception adds per frame
(keeping the 478 landmarks as a list, dropping them for clients, ``Perception.update``) is
timed on the same frames and printed in µs beside the stages, with its share of a tracking
frame. A second stream tracks the same frames without running the blendshape model (what
live tracking does while nobody reads them, and `faced analyze --no-blendshapes`), frame
by frame alternated with the first: the ``no-bshapes`` rows.

``--backend``/``--precision`` choose the back end (vision.backend/precision); with ``all``
(the default) every back end installed here runs, each in its own child process (so each
one's peak RSS is its own), and the figures are printed side by side from the one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by run(): building the `faced` parser stays light
    import numpy as np
    import numpy.typing as npt

WIDTH, HEIGHT = 640, 480
BARE = "no-bshapes"
"""The tracking rows of the stream that does not run the blendshape model."""
MODES = ("detection", "tracking", BARE)
DEFAULT_PHOTO = "lenna.png"
_TEST_DATA = Path(__file__).resolve().parents[2] / "tests" / ".data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    parser.add_argument(
        "--frames", type=int, default=300, help="frames in the tracking run (default 300)"
    )
    parser.add_argument(
        "--detect-frames",
        type=int,
        default=60,
        help="frames in the detection (IMAGE mode) run (default 60)",
    )
    parser.add_argument(
        "--photo", type=Path, default=None, help="face photo (default tests/.data/lenna.png)"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="model directory")
    parser.add_argument(
        "--backend",
        choices=("all", "litert", "onnxruntime"),
        default="all",
        help="back end (default all: every one installed, side by side)",
    )
    parser.add_argument(
        "--precision",
        choices=("all", "fp32", "int8"),
        default="all",
        help="precision (default all)",
    )
    parser.add_argument(
        "--wide",
        action="store_true",
        help="instead: IMAGE mode's tiled search on a 1920x1080 photo (faced.bench.wide_shots)",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)


def _photo(path: Path | None) -> npt.NDArray[np.uint8]:
    from faced.vision.synthetic import load_photo  # noqa: PLC0415

    path = path or _TEST_DATA / DEFAULT_PHOTO
    try:
        return load_photo(path)
    except ValueError:
        raise FileNotFoundError(
            f"{path}: cannot read the face photo (run `python -m tests.data fetch` or pass --photo)"
        ) from None


def _frames(photo: npt.NDArray[np.uint8], count: int) -> Iterator[npt.NDArray[np.uint8]]:
    from faced.vision.synthetic import synthetic_frames  # noqa: PLC0415

    return synthetic_frames(photo, count, frame_size=(WIDTH, HEIGHT))


def _stats(values: list[float]) -> str:
    import numpy as np  # noqa: PLC0415

    if not values:
        return f"{'-':>8} {'-':>8}"
    array = np.asarray(values)
    return f"{np.median(array):8.3f} {np.percentile(array, 90):8.3f}"


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def _combos(args: argparse.Namespace) -> list[tuple[str, str]]:
    import importlib.util  # noqa: PLC0415

    backends = ["litert", "onnxruntime"] if args.backend == "all" else [args.backend]
    if args.backend == "all" and importlib.util.find_spec("onnxruntime") is None:
        print("onnxruntime not installed: its back end is left out", file=sys.stderr)
        backends.remove("onnxruntime")
    precisions = ["fp32", "int8"] if args.precision == "all" else [args.precision]
    return [(b, p) for b in backends for p in precisions]


def run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.detect_frames < 0 or args.threads < 1:
        print("faced bench pipeline: --frames and --threads must be >= 1", file=sys.stderr)
        return 2
    if args.wide:
        from faced.bench import wide_shots  # noqa: PLC0415

        return wide_shots.run(args, args.photo or _TEST_DATA / DEFAULT_PHOTO)
    combos = _combos(args)
    if len(combos) == 1:
        return _run_one(args, *combos[0])
    results = []
    for backend, precision in combos:
        command = [sys.executable, "-m", "faced", "bench", "pipeline", "--json"]
        command += ["--backend", backend, "--precision", precision]
        command += ["--threads", str(args.threads), "--frames", str(args.frames)]
        command += ["--detect-frames", str(args.detect_frames)]
        if args.photo is not None:
            command += ["--photo", str(args.photo)]
        if args.model_dir is not None:
            command += ["--model-dir", str(args.model_dir)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            print(f"faced bench pipeline: {backend}/{precision}: {lines[-1] if lines else ''}",
                  file=sys.stderr)  # fmt: skip
            return 1
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    _print_side_by_side(args, results)
    return 0


def _print_side_by_side(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    names = [f"{r['backend']}/{r['precision']}" for r in results]
    print(
        f"faced bench pipeline: {WIDTH}x{HEIGHT} synthetic moving face, threads={args.threads}, "
        f"each back end in its own process; median / p90 ms"
    )
    print(f"{'mode':<10} {'stage':<16}" + "".join(f"{n:>22}" for n in names))
    for mode in MODES:
        for stage in ("detect", "landmarks", "blendshapes", "pose+eyes+result", "total"):
            cells = [r["stages"].get(mode, {}).get(stage) for r in results]
            text = [f"{c[0]:.3f} / {c[1]:.3f}" if c else "-" for c in cells]
            print(f"{mode:<10} {stage:<16}" + "".join(f"{t:>22}" for t in text))
    for label, key, fmt in (
        ("landmark model alone", "landmark_model", "{0:.3f} / {1:.3f}"),
        ("blendshape model", "blendshape_model", "{0:.3f} / {1:.3f}"),
    ):
        text = [fmt.format(*r[key]) if r[key] else "-" for r in results]
        print(f"{'baseline':<10} {label:<16}" + "".join(f"{t:>22}" for t in text))
    perception = [r.get("perception_us") for r in results]
    text = [f"{c[0]:.0f} / {c[1]:.0f} µs" if c else "-" for c in perception]
    print(f"{'perception':<10} {'update':<16}" + "".join(f"{t:>22}" for t in text))
    shares = []
    for r, c in zip(results, perception, strict=True):
        total = r["stages"].get("tracking", {}).get("total")
        shares.append(f"{100 * c[0] / 1e3 / total[0]:.2f} %" if c and total else "-")
    print(f"{'perception':<10} {'share of frame':<16}" + "".join(f"{t:>22}" for t in shares))
    for label, key, fmt in (
        ("video frames/s", "fps", "{:.1f}"),
        ("model load ms", "load_ms", "{:.0f}"),
        ("peak RSS MiB", "peak_rss_mib", "{:.1f}"),
    ):
        print(f"{label:<27}" + "".join(f"{fmt.format(r[key]):>22}" for r in results))
    print("models in use:")
    for name, result in zip(names, results, strict=True):
        print(f"  {name}: {', '.join(result['files'])}")


def _run_one(args: argparse.Namespace, backend: str, precision: str) -> int:
    import msgspec  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from faced.live import without_landmarks  # noqa: PLC0415
    from faced.perception import Perception  # noqa: PLC0415
    from faced.schemas.tracking import PresenceMessage, TrackingResult  # noqa: PLC0415
    from faced.vision.models import ModelError  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    try:
        photo = _photo(args.photo)
        started = time.perf_counter()
        runtime = Runtime(backend, precision, threads=args.threads)  # type: ignore[arg-type]
        pipe = FacePipeline.load(model_dir=args.model_dir, runtime=runtime)
        load_ms = (time.perf_counter() - started) * 1e3
    except (FileNotFoundError, ModelError) as exc:
        print(f"faced bench pipeline: {exc}", file=sys.stderr)
        return 1
    encoder = msgspec.json.Encoder()
    rows: dict[str, dict[str, list[float]]] = {}

    def record(mode: str, stage: str, ms: float) -> None:
        rows.setdefault(mode, {}).setdefault(stage, []).append(ms)

    # IMAGE mode: the detector runs on every frame.
    for frame in _frames(photo, args.detect_frames):
        began = time.perf_counter()
        result = pipe.analyze(frame)
        encoder.encode(result)
        wall = (time.perf_counter() - began) * 1e3
        _record_result(record, "detection", result, wall)

    # VIDEO mode: track from the previous landmarks, detect only when lost.
    tracker = pipe.tracker()
    # The same frames through a second stream that does not run the blendshape model (live
    # tracking with nobody reading them, `faced analyze --no-blendshapes`), alternating
    # which goes first so both see the same machine.
    bare = pipe.tracker()
    floor_model = pipe.landmark_model
    landmark_invoke: list[float] = []
    blendshape_invoke: list[float] = []
    points = np.zeros((478, 3), dtype=np.float32)
    tracked_wall = 0.0
    perception = Perception()
    perception_us: list[float] = []
    arrived = PresenceMessage(event="arrived", present=True, ts=0)
    for index, frame in enumerate(_frames(photo, args.frames)):
        if index % 2:
            _without_blendshapes(bare, frame, index, encoder, record)
        began = time.perf_counter()
        result = tracker.process(frame, index * 33, landmarks=True)
        encoder.encode(result)
        wall = (time.perf_counter() - began) * 1e3
        tracked_wall += wall
        _record_result(record, "detection" if tracker.last_detected else "tracking", result, wall)
        if not index % 2:
            _without_blendshapes(bare, frame, index, encoder, record)
        full = TrackingResult(
            **{name: getattr(result, name) for name in result.__struct_fields__},
            frame=index,
            ts=index * 33,
            fps=30.0,
            latency_ms=0.0,
        )
        t0 = time.perf_counter()
        for _ in full.faces:  # what landmarks=True adds to the result, per face
            np.round(points.astype(np.float64), 6).tolist()
        without_landmarks(full)
        perception.update(full, arrived if index == 0 else None, present=True, now=index / 30)
        perception_us.append((time.perf_counter() - t0) * 1e6)
        # Baseline, same frame: the two models alone on a crop already made.
        rois = tracker.regions  # the crop the next frame will use
        if rois:
            tensor = floor_model.crop(frame, rois[0]).copy()
            t0 = time.perf_counter()
            floor_model.model.run([tensor])
            t1 = time.perf_counter()
            pipe.blendshape_model.run(points, WIDTH, HEIGHT, 0.0)
            t2 = time.perf_counter()
            landmark_invoke.append((t1 - t0) * 1e3)
            blendshape_invoke.append((t2 - t1) * 1e3)

    fps = args.frames / (tracked_wall / 1e3) if tracked_wall else 0.0
    if args.json:

        def pair(values: list[float]) -> list[float] | None:
            if not values:
                return None
            return [float(np.median(values)), float(np.percentile(values, 90))]

        summary = {
            "backend": backend,
            "precision": precision,
            "files": [m.file for m in runtime.loaded],
            "stages": {
                mode: {stage: pair(values) for stage, values in stages.items()}
                for mode, stages in rows.items()
            },
            "landmark_model": pair(landmark_invoke),
            "perception_us": pair(perception_us),
            "blendshape_model": pair(blendshape_invoke),
            "fps": fps,
            "load_ms": load_ms,
            "peak_rss_mib": _peak_rss_mib(),
        }
        print(json.dumps(summary))
        return 0
    print(
        f"faced bench pipeline: {WIDTH}x{HEIGHT} synthetic moving face, threads={args.threads}, "
        f"{backend}/{precision} ({', '.join(m.file for m in runtime.loaded)}), "
        f"model load {load_ms:.0f} ms"
    )
    print(f"{'mode':<10} {'stage':<16} {'frames':>6} {'median':>8} {'p90':>8}  (ms)")
    for mode in MODES:
        stages = rows.get(mode, {})
        for stage in ("detect", "landmarks", "blendshapes", "pose+eyes+result", "total"):
            values = stages.get(stage, [])
            print(f"{mode:<10} {stage:<16} {len(values):>6} {_stats(values)}")
    print(f"{'baseline':<10} {'landmark model':<16} {len(landmark_invoke):>6} "
          f"{_stats(landmark_invoke)}")  # fmt: skip
    print(f"{'baseline':<10} {'blendshape model':<16} {len(blendshape_invoke):>6} "
          f"{_stats(blendshape_invoke)}")  # fmt: skip
    tracking = rows.get("tracking", {}).get("total", [])
    floor = [a + b for a, b in zip(landmark_invoke, blendshape_invoke, strict=True)]
    if tracking and floor:
        overhead = float(np.median(tracking) - np.median(floor))
        print(f"tracking overhead over the two model invocations: {overhead:.3f} ms/frame")
    bare_total = rows.get(BARE, {}).get("total", [])
    if tracking and bare_total:
        with_ms, without_ms = float(np.median(tracking)), float(np.median(bare_total))
        saved = 100 * (1 - without_ms / with_ms)
        print(f"tracked frame: {with_ms:.3f} ms with blendshapes, {without_ms:.3f} ms without "
              f"({saved:.1f} % less), same frames, alternated")  # fmt: skip
    if tracking and perception_us:
        cost_ms = float(np.median(perception_us)) / 1e3
        share = cost_ms / float(np.median(tracking))
        print(f"{'perception':<10} {'update (µs)':<16} {len(perception_us):>6} "
              f"{_stats(perception_us)}  = {100 * share:.2f} % of a tracking frame, "
              f"{100 * cost_ms / 33.3:.2f} % of a 30 fps frame")  # fmt: skip
    print(f"video mode: {fps:.1f} frames/s ({tracker.detections} detector runs)")
    print(f"peak RSS: {_peak_rss_mib():.1f} MiB")
    return 0


def _without_blendshapes(tracker: Any, frame: Any, index: int, encoder: Any, record: Any) -> None:
    began = time.perf_counter()
    result = tracker.process(frame, index * 33, landmarks=True, blendshapes=False)
    encoder.encode(result)
    wall = (time.perf_counter() - began) * 1e3
    if not tracker.last_detected:
        _record_result(record, BARE, result, wall)


def _record_result(record: Any, mode: str, result: Any, wall_ms: float) -> None:
    timing = result.timing_ms
    record(mode, "detect", timing.detect)
    record(mode, "landmarks", timing.landmarks)
    record(mode, "blendshapes", timing.blendshapes)
    record(
        mode,
        "pose+eyes+result",
        wall_ms - timing.detect - timing.landmarks - timing.blendshapes,
    )
    record(mode, "total", wall_ms)
