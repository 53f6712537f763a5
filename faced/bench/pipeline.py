"""`faced bench pipeline`: where a frame's time goes, detection and tracking apart.

Owner: faced.vision (face pipeline). Runs the pipeline on a synthetic moving-face clip
(faced.vision.synthetic: a test photograph drifting, zooming and tilting, generated frame by
frame, never stored), first in IMAGE mode
(detector on every frame) then in VIDEO mode (tracking), and prints per-stage latency
(median / p90), frames per second and peak RSS. The same run measures a baseline: the two
model invocations alone on the same crops, i.e. the floor any implementation pays, so the
pipeline's own overhead reads directly off the table.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by run(): building the `faced` parser stays light
    import numpy as np
    import numpy.typing as npt

WIDTH, HEIGHT = 640, 480
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


def run(args: argparse.Namespace) -> int:
    import msgspec  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from faced.vision.models import ModelError  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    if args.frames < 1 or args.detect_frames < 0 or args.threads < 1:
        print("faced bench pipeline: --frames and --threads must be >= 1", file=sys.stderr)
        return 2
    try:
        photo = _photo(args.photo)
        started = time.perf_counter()
        pipe = FacePipeline.load(model_dir=args.model_dir, threads=args.threads)
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
    floor_model = pipe.landmark_model
    landmark_invoke: list[float] = []
    blendshape_invoke: list[float] = []
    points = np.zeros((478, 3), dtype=np.float32)
    tracked_wall = 0.0
    for index, frame in enumerate(_frames(photo, args.frames)):
        began = time.perf_counter()
        result = tracker.process(frame, index * 33)
        encoder.encode(result)
        wall = (time.perf_counter() - began) * 1e3
        tracked_wall += wall
        _record_result(record, "detection" if tracker.last_detected else "tracking", result, wall)
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

    print(
        f"faced bench pipeline: {WIDTH}x{HEIGHT} synthetic moving face, threads={args.threads}, "
        f"model load {load_ms:.0f} ms"
    )
    print(f"{'mode':<10} {'stage':<16} {'frames':>6} {'median':>8} {'p90':>8}  (ms)")
    for mode in ("detection", "tracking"):
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
    fps = args.frames / (tracked_wall / 1e3) if tracked_wall else 0.0
    print(f"video mode: {fps:.1f} frames/s ({tracker.detections} detector runs)")
    print(f"peak RSS: {_peak_rss_mib():.1f} MiB")
    return 0


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
