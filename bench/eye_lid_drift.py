"""eyeLook* drift on closing lids (mediapipe issue 4210): raw, calibrated, corrected.

SYNTHETIC lids: no recording of half-closed eyes is available, so each photograph (the demo
photo and the test photos with visible eyes: takeo, lenna, tongue) gets its upper lids
lowered by faced.vision.synthetic.lower_eyelids, CLOSURE of the way to the lower lids, the
eyeballs untouched: the gaze is the same in every frame of a photo, only the lids move.
Photos under 1024 px tall are first upscaled (bicubic) so the lid edit has pixels to move.
Each frame goes through faced's pipeline (IMAGE mode, the short-range detector); the
neutral is the photo's open-eye frame (closure 0), as POST /api/tracking/calibrate would
record it. Printed per photo and side, for each closure:

- eyeBlink, eyeSquint and faced's own openness (faced.vision.eyes) of that eye;
- eyeLookDown/Up/In/Out raw, eyeLookDown calibrated on the open-eye neutral, and
  eyeLookDown with faced.vision.lid_drift's correction then calibrated (what live results
  give with vision.lid_drift_correction on);
- faced's gaze [x, y] of that eye.

Then per photo the worst rise of eyeLookDown over its open-eye value (raw, calibrated,
corrected), the least-squares slope of eyeLookDown's rise over eyeBlink's on the
straight-gaze photos (what lid_drift.LOOK_DOWN_PER_BLINK is set from), and with
``--reference`` the largest difference of any eye* score between faced and MediaPipe's own
Face Landmarker (.venv-ref, tests/reference) on the same frames.

    .venv/bin/python bench/eye_lid_drift.py [--closures 0,0.2,0.4,0.6,0.8,1] [--reference]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

ROOT: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faced.calibration import calibrated  # noqa: E402
from faced.devices.demo_photo import photo_path  # noqa: E402
from faced.schemas.analysis import Analysis  # noqa: E402
from faced.vision.lid_drift import LOOK_DOWN_PER_BLINK, corrected_look_down  # noqa: E402
from faced.vision.models import default_model_dir  # noqa: E402
from faced.vision.pipeline import FacePipeline  # noqa: E402
from faced.vision.synthetic import Image, load_photo, lower_eyelids  # noqa: E402
from tests import data  # noqa: E402

PHOTOS: Final = ("demo", "takeo.ppm", "lenna.png", "tongue.jpg")
STRAIGHT_GAZE: Final = ("demo", "takeo.ppm")
"""Photos whose eyes look at the camera: the drift's slope is fitted on these (lenna's
and tongue's look aside, where the lids take the sideways scores down, not eyeLookDown up)."""
MIN_HEIGHT: Final = 1024
SIDES: Final = ("Left", "Right")


@dataclass(frozen=True, slots=True)
class Row:
    closure: float
    side: str
    raw: dict[str, float]
    calibrated: dict[str, float]
    corrected: dict[str, float]
    openness: float
    gaze: tuple[float, float]


def load(name: str) -> Image:
    photo = load_photo(photo_path(default_model_dir()) if name == "demo" else data.path(name))
    if photo.shape[0] < MIN_HEIGHT:
        scale = MIN_HEIGHT / photo.shape[0]
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return photo


def frames(pipeline: FacePipeline, photo: Image, closures: list[float]) -> list[Image]:
    opened = pipeline.analyze(photo, landmarks=True)
    if opened.landmarks is None:
        raise SystemExit("no face in the open-eye photo")
    return [lower_eyelids(photo, opened.landmarks, closure) for closure in closures]


def rows_of(results: list[Analysis], closures: list[float]) -> list[Row]:
    neutral = results[0].blendshapes
    assert neutral is not None and closures[0] == 0.0
    rows = []
    for closure, result in zip(closures, results, strict=True):
        if result.blendshapes is None or result.eyes is None:
            continue  # the face was lost: printed as missing
        raw = result.blendshapes
        fixed = calibrated(corrected_look_down(raw, neutral), neutral)
        for side in SIDES:
            eye = result.eyes.left if side == "Left" else result.eyes.right
            rows.append(
                Row(closure, side, raw, calibrated(raw, neutral), fixed, eye.openness, eye.gaze)
            )
    return rows


def print_table(name: str, rows: list[Row]) -> None:
    print(f"\n{name} (synthetic lids; neutral = closure 0)")
    print(
        "side  closure  blink squint  open | down   up   in  out (raw) | down cal | down fixed"
        " | gaze x, y"
    )
    for row in sorted(rows, key=lambda r: (r.side, r.closure)):
        s, r = row.side, row.raw
        print(
            f"{s:<5} {row.closure:7.2f}  {r['eyeBlink' + s]:5.2f} {r['eyeSquint' + s]:6.2f}"
            f" {row.openness:5.2f} | {r['eyeLookDown' + s]:4.2f} {r['eyeLookUp' + s]:4.2f}"
            f" {r['eyeLookIn' + s]:4.2f} {r['eyeLookOut' + s]:4.2f}       |"
            f" {row.calibrated['eyeLookDown' + s]:8.2f} | {row.corrected['eyeLookDown' + s]:10.2f}"
            f" | {row.gaze[0]:+.2f}, {row.gaze[1]:+.2f}"
        )


def worst_rise(rows: list[Row], field: str) -> float:
    """Largest eyeLookDown above the open-eye value, over both sides and every closure."""
    rises = []
    for side in SIDES:
        own = [r for r in rows if r.side == side]
        base = getattr(own[0], field)["eyeLookDown" + side]
        rises += [getattr(r, field)["eyeLookDown" + side] - base for r in own]
    return max(rises)


def fitted_slope(all_rows: dict[str, list[Row]]) -> float:
    rises, blinks = [], []
    for name in STRAIGHT_GAZE:
        for side in SIDES:
            own = [r for r in all_rows[name] if r.side == side]
            base = own[0].raw
            rises += [r.raw["eyeLookDown" + side] - base["eyeLookDown" + side] for r in own]
            blinks += [r.raw["eyeBlink" + side] - base["eyeBlink" + side] for r in own]
    x, y = np.array(blinks), np.array(rises)
    return float(x @ y / (x @ x))


def reference_gap(photo_frames: dict[str, list[Image]], results: dict[str, list[Analysis]]) -> None:
    from tests.reference.landmarker import MediaPipeReference  # noqa: PLC0415  (.venv-ref)

    print("\nfaced vs MediaPipe's Face Landmarker (IMAGE mode, same frames): largest |delta|")
    with MediaPipeReference("image") as reference:
        for name, images in photo_frames.items():
            gaps = []
            for image, ours in zip(images, results[name], strict=True):
                theirs = reference.analyze(image)
                if not theirs.faces or ours.blendshapes is None:
                    continue
                mine = ours.blendshapes
                gaps += [
                    abs(mine[n] - v) for n, v in theirs.faces[0].blendshapes.items() if "eye" in n
                ]
            print(f"  {name:<11} eye* scores, {len(images)} frames: {max(gaps):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--closures", default="0,0.2,0.4,0.6,0.8,1")
    parser.add_argument("--reference", action="store_true", help="compare with MediaPipe")
    args = parser.parse_args()
    closures = [float(c) for c in args.closures.split(",")]
    if closures[0] != 0.0 or not all(0.0 <= c <= 1.0 for c in closures):
        parser.error("--closures: numbers within 0..1, the first 0 (the open-eye neutral)")
    pipeline = FacePipeline.load()
    photo_frames = {name: frames(pipeline, load(name), closures) for name in PHOTOS}
    results = {name: [pipeline.analyze(f) for f in fs] for name, fs in photo_frames.items()}
    all_rows = {name: rows_of(results[name], closures) for name in PHOTOS}
    for name, rows in all_rows.items():
        print_table(name, rows)
    print("\nworst rise of eyeLookDown over its open-eye value (either side, any closure)")
    print("photo        raw  calibrated  corrected")
    for name, rows in all_rows.items():
        print(
            f"{name:<11} {worst_rise(rows, 'raw'):4.2f}  {worst_rise(rows, 'calibrated'):10.2f}"
            f"  {worst_rise(rows, 'corrected'):9.2f}"
        )
    straight = ", ".join(STRAIGHT_GAZE)
    print(
        f"\nslope of eyeLookDown's rise over eyeBlink's, straight gaze ({straight}):"
        f" {fitted_slope(all_rows):.2f} (faced.vision.lid_drift uses {LOOK_DOWN_PER_BLINK})"
    )
    if args.reference:
        reference_gap(photo_frames, results)


if __name__ == "__main__":
    main()
