"""Detection range: how small a face each detector finds, and what small faces cost in accuracy.

Each test photograph (tests/data.py's pinned photos and the demo photo) is tracked at full
size with the short-range detector, MediaPipe's own setting: that is the reference. Then it
is scaled so the face (the x extent of its 478 landmarks) is W px wide and placed in the
middle of a 640x480 and a 1280x720 frame (area-averaged like a sensor, flat background).
Printed per frame size and face width:

- short / full / auto: photographs whose face IMAGE mode finds with that vision.detector;
- stream: an auto tracker fed the still frame as a 30 frames/s camera would: photographs
  found within STREAM_FRAMES frames and the worst number of frames it took;
- landmark error: mean distance of the 478 landmarks of that tracked face (mapped back into
  the photograph) from the full-size photo's (tracked the same way, unsmoothed), in % of
  the inter-ocular distance (outer eye corners 33-263), median and worst over photographs;
- blendshapes: mean and max |delta| of the 52 scores against the full-size photo's.

Then a tracking clip: the demo photo's face, W px wide, drifting, zooming and tilting in a
640x480 frame (faced.vision.synthetic.Motion) for --frames frames, through a Tracker per
detector: share of frames with a face, detector runs, and what one detector call costs
(median ms, short vs full, same run).

    .venv/bin/python bench/detection_range.py [--widths 20,25,30,40,50,60,80,120] [--frames 150]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import numpy.typing as npt

ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faced.schemas.analysis import Analysis, Face  # noqa: E402
from faced.vision import synthetic  # noqa: E402
from faced.vision.models import ModelStore  # noqa: E402
from faced.vision.pipeline import FacePipeline  # noqa: E402
from tests import data  # noqa: E402

FRAMES: Final = ((640, 480), (1280, 720))
MODES: Final = ("short", "full", "auto")
RIGHT_OUTER, LEFT_OUTER = 33, 263
STREAM_FRAMES: Final = 90
TRACKED_AFTER: Final = 3


@dataclass(frozen=True, slots=True)
class Reference:
    name: str
    photo: npt.NDArray[np.uint8]
    points: npt.NDArray[np.float64]  # (478, 2) photo px
    blendshapes: npt.NDArray[np.float64]
    width_px: float
    iod_px: float


def _points(face: Face, width: int, height: int) -> npt.NDArray[np.float64]:
    assert face.landmarks is not None
    xy = np.asarray(face.landmarks, dtype=np.float64)[:, :2]
    return xy * [width, height]


def _scores(face: Face) -> npt.NDArray[np.float64]:
    return np.asarray(list(face.blendshapes.values()), dtype=np.float64)


def references(pipeline: FacePipeline) -> list[Reference]:
    photos = {name: data.load_rgb(name) for name in data.FACE_PHOTOS}
    demo = ROOT / "models" / "demo_face.png"
    if demo.is_file():
        photos["demo_face.png"] = synthetic.load_photo(demo)
    result = []
    for name, photo in photos.items():
        # Tracked like the small copies below (landmarks from the tracking crop, unsmoothed),
        # so the comparison measures size, not IMAGE vs VIDEO mode.
        tracker = pipeline.tracker(smoothing=False)
        for index in range(1 + TRACKED_AFTER):
            analysis = tracker.process(photo, 1 + index * 33, landmarks=True)
        if not analysis.faces:
            print(f"# {name}: no face at full size with the short-range detector; left out")
            continue
        face = analysis.faces[0]  # the largest
        points = _points(face, photo.shape[1], photo.shape[0])
        result.append(
            Reference(
                name,
                photo,
                points,
                _scores(face),
                float(np.ptp(points[:, 0])),
                float(np.linalg.norm(points[RIGHT_OUTER] - points[LEFT_OUTER])),
            )
        )
    return result


def place(ref: Reference, face_px: float, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The frame with ``ref``'s photo scaled (area-averaged, as a camera sensor would see it)
    so its face is ``face_px`` wide, centred, cropped by the frame; and the photo->frame
    affine matrix."""
    photo_h, photo_w = ref.photo.shape[:2]
    scale = face_px / ref.width_px
    new_w, new_h = max(1, round(photo_w * scale)), max(1, round(photo_h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(ref.photo, (new_w, new_h), interpolation=interpolation)
    frame = np.empty((size[1], size[0], 3), dtype=np.uint8)
    frame[:] = synthetic.BACKGROUND_RGB
    left, top = (size[0] - new_w) // 2, (size[1] - new_h) // 2
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + new_w, size[0]), min(top + new_h, size[1])
    frame[y0:y1, x0:x1] = scaled[y0 - top : y1 - top, x0 - left : x1 - left]
    # cv2.resize maps pixel centres: x' = (x + 0.5) * sx - 0.5.
    sx, sy = new_w / photo_w, new_h / photo_h
    matrix = np.array(
        [[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]], dtype=np.float64
    )
    return frame, matrix


def match(
    analysis: Analysis, expected: npt.NDArray[np.float64], size: tuple[int, int]
) -> Face | None:
    """The face whose landmarks' centre is nearest the expected centre (frame px), if it is
    within a quarter of the expected face width."""
    best, best_d = None, np.inf
    for face in analysis.faces:
        centre = _points(face, *size).mean(axis=0)
        d = float(np.linalg.norm(centre - expected.mean(axis=0)))
        if d < best_d:
            best, best_d = face, d
    return best if best_d <= 0.25 * np.ptp(expected[:, 0]) else None


def stream_find(
    pipe: FacePipeline, frame: np.ndarray, expected: np.ndarray, size: tuple[int, int]
) -> tuple[int, Face] | None:
    """Feed the still frame to an auto tracker (unsmoothed) as a 30 frames/s camera would:
    the frame count until the face is found, and the tracked face TRACKED_AFTER frames
    later (landmarks from the tracking crop, as the product reports them)."""
    tracker = pipe.tracker(smoothing=False)
    for index in range(STREAM_FRAMES):
        face = match(tracker.process(frame, 1 + index * 33, landmarks=True), expected, size)
        if face is not None:
            for later in range(TRACKED_AFTER):
                stamp = 1 + (index + 1 + later) * 33
                face = match(tracker.process(frame, stamp, landmarks=True), expected, size)
                if face is None:
                    return None
            return index + 1, face
    return None


def still_table(pipes: dict[str, FacePipeline], refs: list[Reference], widths: list[int]) -> None:
    print(
        f"\n{len(refs)} photographs ({', '.join(r.name for r in refs)}) placed still in a frame."
        f"\nIMAGE mode: found by short / full / auto. Stream: an auto tracker fed the frame "
        f"at 30 frames/s (up to {STREAM_FRAMES}); found, worst frames-to-find; landmark "
        "error and blendshape drift of the tracked face vs the full-size photo."
    )
    print(
        "| frame | face px | short | full | auto | stream found | frames to find "
        "| landmark err % IOD (median / worst) | blendshape mean abs d | blendshape max abs d |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in FRAMES:
        for width in widths:
            found = dict.fromkeys(MODES, 0)
            errors, means, maxes, waits = [], [], [], []
            for ref in refs:
                frame, matrix = place(ref, width, size)
                expected = ref.points @ matrix[:, :2].T + matrix[:, 2]
                inverse = cv2.invertAffineTransform(matrix)
                for mode in MODES:
                    if match(pipes[mode].analyze(frame, landmarks=True), expected, size):
                        found[mode] += 1
                streamed = stream_find(pipes["auto"], frame, expected, size)
                if streamed is None:
                    continue
                wait, face = streamed
                waits.append(wait)
                back = _points(face, *size) @ inverse[:, :2].T + inverse[:, 2]
                error = np.linalg.norm(back - ref.points, axis=1).mean() / ref.iod_px
                errors.append(100 * error)
                delta = np.abs(_scores(face) - ref.blendshapes)
                means.append(float(delta.mean()))
                maxes.append(float(delta.max()))
            n = len(refs)
            err = f"{statistics.median(errors):.1f} / {max(errors):.1f}" if errors else "-"
            bs_mean = f"{statistics.mean(means):.3f}" if means else "-"
            bs_max = f"{max(maxes):.3f}" if maxes else "-"
            wait_s = str(max(waits)) if waits else "-"
            print(
                f"| {size[0]}x{size[1]} | {width} | {found['short']}/{n} | {found['full']}/{n} "
                f"| {found['auto']}/{n} | {len(waits)}/{n} | {wait_s} | {err} | {bs_mean} "
                f"| {bs_max} |"
            )


def tracking_table(
    pipes: dict[str, FacePipeline], refs: list[Reference], widths: list[int], frames: int
) -> None:
    ref = next((r for r in refs if r.name == "demo_face.png"), refs[0])
    size = synthetic.DEFAULT_SIZE
    photo_h, photo_w = ref.photo.shape[:2]
    fit = min(size[0] / photo_w, size[1] / photo_h)
    print(
        f"\nVIDEO mode (Tracker), {ref.name} moving in {size[0]}x{size[1]}, {frames} frames: "
        "frames with a face / detector runs"
    )
    print("| face px | short | full | auto |")
    print("|---|---|---|---|")
    for width in widths:
        motion = synthetic.Motion(fill=width / ref.width_px / fit, period=120)
        clip = list(synthetic.synthetic_frames(ref.photo, frames, frame_size=size, motion=motion))
        cells = []
        for mode in MODES:
            tracker = pipes[mode].tracker()
            seen = sum(
                bool(tracker.process(frame, 1 + i * 33).faces) for i, frame in enumerate(clip)
            )
            cells.append(f"{100 * seen / frames:.0f} % / {tracker.detections}")
        print(f"| {width} | {' | '.join(cells)} |")


def detector_cost(pipe: FacePipeline, repeat: int = 60) -> None:
    frame = np.full((480, 640, 3), 90, dtype=np.uint8)
    print(f"\nOne detector call on a 640x480 frame, median of {repeat} (alternating, same run):")
    times: dict[str, list[float]] = {"short": [], "full": []}
    for _ in range(repeat):
        for name, values in times.items():
            began = time.perf_counter()
            pipe.detectors[name].detect(frame, 1)
            values.append(time.perf_counter() - began)
    for name, values in times.items():
        print(f"  {name:<5} {1e3 * statistics.median(values):.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="20,25,30,40,50,60,80,120")
    parser.add_argument("--track-widths", default="30,45,60")
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    store = ModelStore()
    pipes = {mode: FacePipeline(store, detector=mode) for mode in MODES}  # type: ignore[arg-type]
    refs = references(pipes["short"])
    still_table(pipes, refs, widths)
    tracking_table(pipes, refs, [int(w) for w in args.track_widths.split(",")], args.frames)
    detector_cost(pipes["auto"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
