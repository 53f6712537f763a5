"""`faced bench pipeline --wide`: what IMAGE mode's tiled search costs a wide photo.

Owns: this measurement and its table, and ``wide_shot`` (a real photograph scaled so its
face is ``face_px`` wide and pasted into a large grey canvas), which the tests use too.
Does not own: the search (faced.vision.pipeline, faced.vision.tracker.image_tiles). With
``vision.detector = auto`` a photo nobody is found in by the whole-frame looks (short, then
full range) gets full range over tiles; the run times, on the same 1920x1080 canvas, the
plain path (the whole-frame looks alone, what a photo cost before), a near face (short
range finds it: no tiles), the small face (tiles until it is found) and nobody (every tile).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

CANVAS = (1920, 1080)
FACE_PX = 110
GREY = 128


def wide_shot(
    photo: npt.NDArray[np.uint8],
    face_width: float,
    *,
    face_px: int = FACE_PX,
    size: tuple[int, int] = CANVAS,
    at: tuple[float, float] = (0.5, 0.5),
) -> npt.NDArray[np.uint8]:
    """``photo`` (RGB, its face ``face_width`` px wide) scaled so the face is ``face_px``
    wide, pasted into a grey ``size`` canvas with its centre at ``at`` (shares of the
    canvas, kept inside it)."""
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    scale = face_px / face_width
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    width, height = size
    canvas = np.full((height, width, 3), GREY, dtype=np.uint8)
    # A photo larger than the canvas keeps its middle.
    h, w = small.shape[:2]
    y0, x0 = max(0, (h - height) // 2), max(0, (w - width) // 2)
    small = small[y0 : y0 + height, x0 : x0 + width]
    h, w = small.shape[:2]
    left = min(max(0, round(at[0] * width - w / 2)), width - w)
    top = min(max(0, round(at[1] * height - h / 2)), height - h)
    canvas[top : top + h, left : left + w] = small
    return canvas


def _median_ms(call: object, repeat: int) -> float:
    assert callable(call)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def run(args: argparse.Namespace, photo_path: Path) -> int:
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from faced.vision.models import ModelError  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415
    from faced.vision.runtime import Runtime  # noqa: PLC0415
    from faced.vision.stages import StageTimes  # noqa: PLC0415
    from faced.vision.tracker import image_tiles  # noqa: PLC0415

    repeat = max(1, args.detect_frames // 6)
    backend = "litert" if args.backend == "all" else args.backend
    precision = "fp32" if args.precision == "all" else args.precision
    try:
        runtime = Runtime(backend, precision, threads=args.threads)  # type: ignore[arg-type]
        pipeline = FacePipeline.load(args.model_dir, runtime=runtime, detector="auto")
    except (ModelError, ValueError) as exc:
        print(f"faced bench pipeline --wide: {exc}", file=sys.stderr)
        return 1
    bgr = cv2.imread(str(photo_path))
    if bgr is None:
        print(f"faced bench pipeline --wide: cannot read {photo_path}", file=sys.stderr)
        return 1
    photo = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    found = pipeline.analyze(photo)
    if found.bbox is None:
        print(f"faced bench pipeline --wide: no face in {photo_path}", file=sys.stderr)
        return 1
    face_width = found.bbox[2] * photo.shape[1]
    width, height = CANVAS
    small = wide_shot(photo, face_width)
    near = wide_shot(photo, face_width, face_px=height // 4)
    empty = np.full((height, width, 3), GREY, dtype=np.uint8)
    if not pipeline.analyze(small).face_found:
        print("faced bench pipeline --wide: the small face was not found", file=sys.stderr)
        return 1
    times = StageTimes()

    def plain() -> None:  # the whole-frame looks alone: short, then full range
        pipeline.detect_rois(empty, 1, times)
        pipeline.detect_rois(empty, 1, times, "full")

    rows = [
        ("plain path (whole-frame looks, nobody)", _median_ms(plain, repeat)),
        ("near face (short range finds it)", _median_ms(lambda: pipeline.analyze(near), repeat)),
        (
            f"{FACE_PX} px face (tiles until found)",
            _median_ms(lambda: pipeline.analyze(small), repeat),
        ),
        ("nobody (every tile searched)", _median_ms(lambda: pipeline.analyze(empty), repeat)),
    ]
    tiles = len(image_tiles(width, height))
    print(
        f"IMAGE mode, vision.detector = auto, {width}x{height}, {tiles} tiles, "
        f"{backend}/{precision}, {args.threads} thread(s), median of {repeat} (ms per image)"
    )
    for label, ms in rows:
        print(f"  {label:<42} {ms:8.1f}")
    return 0
