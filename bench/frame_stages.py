"""The per-frame steps of the face pipeline, this checkout against an earlier one, one run.

Each step a tracked frame takes besides the two models (reading and decoding it, whole and
as the tracker's band, crop, projection, tracking region, smoothing, head pose, eyes, the
face's fields, the result, the JSON line) is timed alone on
a real frame of the synthetic bench clip: its thread CPU time (less disturbed by other
processes than wall time), the minimum of 7 repeats. Both trees run as child processes with
their own ``PYTHONPATH``, pinned to one core, alternating, ``--rounds`` times; the table
shows the median per step. Steps are called as the pipeline calls them, so only steps whose
signature both trees share are timed (the blendshape model is replaced by a stub where a
step would run it).

    git worktree add /tmp/before <commit>   # the earlier tree (its models: ln -s)
    .venv/bin/python bench/frame_stages.py --before /tmp/before [--rounds 3] [--core 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
PHOTO: Final = ROOT / "tests" / ".data" / "lenna.png"
CACHE: Final = ROOT / ".cache" / "bench"
CLIP_FRAMES: Final = 60  # the clip the video-frame step reads, round and round
INSTRUCTION_CALLS: Final = 20


def steps() -> dict[str, tuple[Callable[[], object], int]]:
    """The steps of the tree on ``sys.path`` (run in the child), each with how many calls
    one timing takes."""
    import inspect  # noqa: PLC0415
    import io  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from faced.commands.analyze import _Output  # noqa: PLC0415
    from faced.vision.eyes import eye_states  # noqa: PLC0415
    from faced.vision.landmarks import project, roi_from_landmarks  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415
    from faced.vision.stages import StageTimes, prepare  # noqa: PLC0415
    from faced.vision.synthetic import cached_clip, load_photo, synthetic_frames  # noqa: PLC0415
    from faced.vision.video import VideoReader  # noqa: PLC0415

    pipe = FacePipeline.load(ROOT / "models")
    tracker = pipe.tracker()
    frames = list(synthetic_frames(load_photo(PHOTO), 6, frame_size=(640, 480)))
    for index, image in enumerate(frames):
        tracker.process(image, index * 33)
    frame = prepare(frames[-1])  # the working RGBA frame, as the tracker has it
    roi = tracker.regions[0]
    face = pipe.landmark_model.run(frame, roi)
    assert face is not None
    points, width, height = face.points, 640, 480
    times = StageTimes()
    smoother = tracker._smoother  # the stream's own smoother, warmed up
    assert smoother is not None
    raw = (np.random.default_rng(0).random((478, 3)) * 256).astype(np.float32)
    scores = pipe.blendshape_model.run(points, width, height, 0.0)

    class Stub:
        def run(self, *args: Any) -> Any:
            return scores

    model = pipe.blendshape_model

    def describe() -> None:
        pipe.blendshape_model = Stub()  # type: ignore[assignment]
        try:
            pipe.describe(face, points, width, height, with_landmarks=False, times=times)
        finally:
            pipe.blendshape_model = model

    described = pipe.describe(face, points, width, height, with_landmarks=False, times=times)
    result = pipe.result([described], width, height, times, 0.0, with_landmarks=False)
    output = _Output(True, io.BytesIO(), sys.stderr)
    reader = VideoReader(cached_clip(PHOTO, CACHE, CLIP_FRAMES), "rgba")
    buffer = reader.read()

    # A tree whose reader decodes a tracked frame's band only (faced.vision._jpeg_band)
    # reads the band the tracker's region needs; an earlier one the whole frame.
    band_reads = "band" in inspect.signature(VideoReader.read).parameters
    band = tracker.next_footprint() if band_reads else None

    def read_frame(band: tuple[int, int, int, int] | None = None) -> None:
        # The clip's next frame, as `faced analyze` reads it (into the previous frame's
        # array); back to the start at its end (1 call in CLIP_FRAMES).
        nonlocal buffer
        read = (lambda: reader.read(buffer, band)) if band_reads else lambda: reader.read(buffer)
        frame = read()
        if frame is None:
            reader.rewind()
            frame = read()
        buffer = frame

    clock = [1000]

    def track() -> None:
        clock[0] += 33
        tracker.process(frames[-1], clock[0])

    table: dict[str, tuple[Callable[[], object], int]] = {
        "crop (warp, RGB, scale)": (lambda: pipe.landmark_model.crop(frame, roi), 300),
        "landmarks: projection": (lambda: project(raw, roi, width, height), 2000),
        "tracking region": (lambda: roi_from_landmarks(points, width, height), 2000),
        "smoothing": (lambda: smoother.apply(points, width, height, 10**9), 2000),
        "head pose": (lambda: pipe.geometry.solve(points, width, height), 2000),
        "eyes": (lambda: eye_states(points, width, height), 2000),
        "face fields (blendshape model stubbed)": (describe, 1000),
        "result": (
            lambda: pipe.result([described], width, height, times, 0.0, with_landmarks=False),
            2000,
        ),
        "JSON line": (lambda: output.frame("clip", 1, result), 2000),
        "video frame (read, decode to RGBA)": (read_frame, 300),
        "tracked video frame (its band where it can)": (lambda: read_frame(band), 300),
        "blendshape model (reference)": (lambda: model.run(points, width, height, 0.0), 300),
        "tracked frame, all of it (reference)": (track, 100),
    }
    return table


def measure() -> dict[str, float]:
    """Thread CPU µs per call of each step: the minimum of 7 timings (run in the child)."""
    import time  # noqa: PLC0415
    import timeit  # noqa: PLC0415

    return {
        name: min(timeit.Timer(step, timer=time.thread_time).repeat(number=n, repeat=7)) / n * 1e6
        for name, (step, n) in steps().items()
    }


def count_instructions() -> list[str]:
    """Each step called INSTRUCTION_CALLS times inside its own ``functools.reduce`` (run in
    the child under callgrind, which counts only inside ``reduce`` and writes one part per
    call): the step names in the parts' order."""
    from functools import reduce  # noqa: PLC0415

    table = steps()
    for step, _ in table.values():
        step()  # warm: first calls allocate buffers the later ones reuse
    for step, _ in table.values():
        reduce(lambda _, __, step=step: step(), range(INSTRUCTION_CALLS), None)
    return list(table)


def instructions(tree: Path, core: int, scratch: Path) -> dict[str, float]:
    """Instructions per call of each step of ``tree``, counted by callgrind."""
    out = scratch / f"callgrind.{tree.name}"
    command = ["taskset", "-c", str(core), "valgrind", "--tool=callgrind", "--collect-atstart=no"]
    command += ["--toggle-collect=functools_reduce", "--dump-after=functools_reduce"]
    command += [f"--callgrind-out-file={out}", sys.executable, __file__, "--child", "--count"]
    command += ["--before", str(tree)]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-5:]
        raise SystemExit(f"callgrind on {tree} failed:\n" + "\n".join(tail))
    names = json.loads(done.stdout.strip().splitlines()[-1])
    parts = sorted(scratch.glob(f"{out.name}.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    counts = []
    for part in parts:
        totals = [line for line in part.read_text().splitlines() if line.startswith("totals:")]
        counts.append(int(totals[0].split()[1]) if totals else 0)
    # The parts are the reduce calls in order; the steps' are the last len(names).
    return {
        name: count / INSTRUCTION_CALLS
        for name, count in zip(names, counts[-len(names) :], strict=True)
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the earlier checkout")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (default 0)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help=f"count instructions per call under callgrind ({INSTRUCTION_CALLS} calls a step, "
        "one run a tree: repeatable under load) instead of timing",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(count_instructions() if args.count else measure()))
        return 0
    if not (args.before / "faced" / "vision").is_dir():
        parser.error(f"{args.before} is not a faced checkout")
    if shutil.which("taskset") is None:
        parser.error("taskset (util-linux) is needed to pin the runs to one core")
    trees = {"before": args.before.resolve(), "after": ROOT}
    if args.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind")
        with tempfile.TemporaryDirectory(prefix="frame-stages-") as scratch:
            counts = {
                side: instructions(tree, args.core, Path(scratch)) for side, tree in trees.items()
            }
        print(f"per-frame steps, instructions per call (callgrind, {INSTRUCTION_CALLS} calls)")
        print(f"{'step':42s} {'before':>11s} {'after':>11s}")
        for name, after in counts["after"].items():
            before = counts["before"].get(name)
            if before is None:
                print(f"{name:42s} {'—':>11s} {after:11.0f}")
                continue
            change = f"{100 * (after / before - 1):+6.1f} %" if before else ""
            print(f"{name:42s} {before:11.0f} {after:11.0f}  {change}")
        return 0
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side, tree in trees.items():
            command = ["taskset", "-c", str(args.core), sys.executable, __file__, "--child"]
            command += ["--before", str(args.before)]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-5:]
                raise SystemExit(f"{side} ({tree}) failed:\n" + "\n".join(tail))
            runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"per-frame steps, µs of thread CPU per call (median of {args.rounds} alternated "
          f"rounds, each the minimum of 7 repeats), core {args.core}, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'step':42s} {'before':>9s} {'after':>9s}")
    for name in runs["after"][0]:
        if name not in runs["before"][0]:
            continue
        before = statistics.median(r[name] for r in runs["before"])
        after = statistics.median(r[name] for r in runs["after"])
        print(f"{name:42s} {before:9.1f} {after:9.1f}  {100 * (after / before - 1):+6.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
