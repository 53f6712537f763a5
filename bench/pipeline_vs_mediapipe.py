"""faced's face pipeline against MediaPipe, whole process against whole process, one core.

Both programs get the same synthetic moving-face clip (``faced.vision.synthetic``; 600
frames of 640x480 MJPEG by default, written once to a cache directory) and do the same work
per frame: decode, detect or track, landmarks, blendshapes, head pose, one JSON line on
stdout.

- faced:     ``faced analyze CLIP --jsonl``, and ``--no-blendshapes`` (the blendshape model
  not run: what live tracking does while nobody reads the scores) as a side of its own
- MediaPipe: ``bench/mediapipe_video.py CLIP`` (mediapipe==1.2.2, VIDEO mode), run by the
  python of .venv-ref (``make reference``), the venv MediaPipe lives in

Each runs pinned to one core (``taskset -c CORE``), several times, alternating, so both see
the same machine load; each run's wall time and peak RSS (``wait4`` rusage of that very
process) are recorded. A 1-frame clip measures each side's start-up (imports, model
loading) so the per-frame cost can be told apart from it. Absolute times on shared
machines drift by tens of percent: only the side-by-side figures of one run mean anything.
faced's modules are compiled to bytecode first, as installing faced does (MediaPipe's venv
has its bytecode): a source checkout run with PYTHONDONTWRITEBYTECODE would otherwise
compile them again in every run.

    .venv/bin/python bench/pipeline_vs_mediapipe.py [--frames 600] [--repeat 3] [--core 1]
        [--backends all | litert:fp32,litert:int8,onnxruntime:fp32,onnxruntime:int8]
        [--before DIR]   # an earlier checkout's sides too, in the same rounds
    make bench-pipeline

With several back ends (``--backends all``) every one runs as its own ``faced analyze``
process in the same alternating rounds, so the figures of all of them and MediaPipe's sit
side by side from one run.
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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
BIN: Final = Path(sys.executable).parent
DATA_DIR: Final = ROOT / "tests" / ".data"
MODEL_BUNDLE: Final = DATA_DIR / "face_landmarker.task"
# MediaPipe's venv (make reference); FACED_REFERENCE_PYTHON overrides it, as for the tests.
REFERENCE_PYTHON: Final = Path(
    os.environ.get("FACED_REFERENCE_PYTHON") or ROOT / ".venv-ref" / "bin" / "python"
)
GOAL_RATIO: Final = 0.72
BARE_GOAL_RATIO: Final = 0.65  # `faced analyze --no-blendshapes` against MediaPipe's full work
BARE: Final = " no-bshapes"
INT8_GOAL_RATIO: Final = 0.5  # the goal: the int8 path at most half MediaPipe's time
ALL_BACKENDS: Final = ("litert:fp32", "litert:int8", "onnxruntime:fp32", "onnxruntime:int8")


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mib: float
    lines: int
    frames_with_face: int


@dataclass(frozen=True, slots=True)
class Side:
    name: str
    command: list[str]
    pythonpath: Path | None = None
    """An earlier faced checkout this side imports (--before), instead of the current one."""


def pinned(command: list[str], core: int) -> list[str]:
    """The command pinned to ``core`` by taskset (util-linux), which execs it: the process
    measured is the program itself."""
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the processes to one core")
    return ["taskset", "-c", str(core), *command]


def run(side: Side, clip: Path, core: int, output: Path) -> Run:
    command = pinned([*side.command, str(clip)], core)
    with output.open("wb") as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        env = (
            None if side.pythonpath is None else {**os.environ, "PYTHONPATH": str(side.pythonpath)}
        )
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        # wait4 gives this child's own rusage: its peak RSS, not the maximum over all runs.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace").strip().splitlines()[-15:]
            raise SystemExit(
                f"{side.name} failed (exit {process.returncode}): {' '.join(command)}\n"
                + "\n".join(tail)
            )
    lines = output.read_text(encoding="utf-8").splitlines()
    with_face = sum(1 for line in lines if json.loads(line).get("face_found"))
    # ru_maxrss is in KiB on Linux.
    return Run(
        wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, len(lines), with_face
    )


def blendshape_agreement(faced_out: Path, mediapipe_out: Path) -> tuple[float, float, int]:
    """Mean and max |Δ| over MediaPipe's 51 ARKit blendshapes, per frame where both found
    a face: the two processes did the same work."""
    deltas: list[float] = []
    frames = 0
    with faced_out.open(encoding="utf-8") as ours, mediapipe_out.open(encoding="utf-8") as theirs:
        for our_line, their_line in zip(ours, theirs, strict=False):
            our_doc, their_doc = json.loads(our_line), json.loads(their_line)
            if not (our_doc["faces"] and their_doc["faces"]):
                continue
            frames += 1
            our_shapes = our_doc["faces"][0]["blendshapes"]
            for name, score in their_doc["faces"][0]["blendshapes"].items():
                if name != "_neutral":
                    deltas.append(abs(our_shapes[name] - score))
    if not deltas:
        return float("nan"), float("nan"), 0
    return statistics.fmean(deltas), max(deltas), frames


def compile_bytecode(package: Path | None = None) -> str:
    """Compile the faced package the children import, as installing it does (pip compiles
    a wheel's modules; MediaPipe's venv has its bytecode). Where PYTHONDONTWRITEBYTECODE is
    set and faced runs from a source tree, every run would otherwise compile its ~40
    modules again (~40 ms of start-up CPU that an installed faced never spends)."""
    import compileall  # noqa: PLC0415

    if package is None:
        import faced  # noqa: PLC0415  (the package the children import: same environment)

        package = Path(faced.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        return f"{package} could not all be compiled: start-up includes compiling"
    return f"{package} compiled (as installed)"


def fetch_test_data() -> None:
    fetched = subprocess.run(
        [sys.executable, "-m", "tests.data", "fetch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if fetched.returncode != 0:
        raise SystemExit(f"test data unavailable:\n{fetched.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="clip length (default 600)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side (default 3)")
    parser.add_argument("--core", type=int, default=1, help="CPU core to pin to (default 1)")
    parser.add_argument(
        "--photo", default="lenna.png", help="test photograph in tests/.data the clip moves"
    )
    parser.add_argument(
        "--backends",
        default="litert:fp32",
        help="faced back ends to run, comma-separated BACKEND:PRECISION (litert|onnxruntime : "
        "fp32|int8), or `all` (default litert:fp32)",
    )
    parser.add_argument(
        "--skip-no-blendshapes",
        action="store_true",
        help="leave out the `faced analyze --no-blendshapes` side of each back end",
    )
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "bench")
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="an earlier faced checkout (`git worktree add DIR COMMIT`): its `faced analyze` "
        "sides run too, alternated with this checkout's and MediaPipe's",
    )
    args = parser.parse_args(argv)
    if args.frames < 2 or args.repeat < 1:
        parser.error("--frames must be at least 2 and --repeat at least 1")
    if args.core not in os.sched_getaffinity(0):
        parser.error(f"core {args.core} is not available here: {sorted(os.sched_getaffinity(0))}")
    combos = ALL_BACKENDS if args.backends == "all" else tuple(args.backends.split(","))
    for combo in combos:
        if combo not in ALL_BACKENDS:
            parser.error(f"--backends: {combo!r} is not one of {', '.join(ALL_BACKENDS)}")

    if not REFERENCE_PYTHON.exists():
        parser.error(f"MediaPipe's venv is missing ({REFERENCE_PYTHON}): run `make reference`")

    from faced.vision.synthetic import cached_clip  # noqa: PLC0415  (after argument errors)

    fetch_test_data()
    photo = DATA_DIR / args.photo
    if not photo.is_file():
        parser.error(f"no photograph {photo}")
    clip = cached_clip(photo, args.cache_dir, args.frames)
    startup_clip = cached_clip(photo, args.cache_dir, 1)
    compiled = compile_bytecode()
    if args.before is not None:
        if not (args.before / "faced" / "cli.py").is_file():
            parser.error(f"--before: {args.before} is not a faced checkout")
        compiled += "; " + compile_bytecode(args.before / "faced")
    faced_sides = tuple(
        Side(
            f"faced {combo.replace(':', '/')}",
            [
                str(BIN / "faced"),
                "analyze",
                "--jsonl",
                "--backend",
                combo.split(":")[0],
                "--precision",
                combo.split(":")[1],
            ],
        )
        for combo in combos
    )
    if not args.skip_no_blendshapes:
        faced_sides = tuple(
            side
            for full in faced_sides
            for side in (full, Side(full.name + BARE, [*full.command, "--no-blendshapes"]))
        )
    if args.before is not None:
        # The same sides from the earlier checkout, alternated with the rest in one run.
        faced_sides = tuple(
            side
            for current in faced_sides
            for side in (
                current,
                Side(current.name + " (before)", current.command, args.before.resolve()),
            )
        )
    baseline = Side(
        "MediaPipe",
        [
            str(REFERENCE_PYTHON),
            str(ROOT / "bench" / "mediapipe_video.py"),
            *("--model", str(MODEL_BUNDLE)),
        ],
    )
    sides = (*faced_sides, baseline)
    print(f"clip: {clip} ({args.frames} frames, 640x480 MJPEG, from {args.photo})")
    print(f"pinned to core {args.core}; {args.repeat} alternating runs per side")
    print(f"faced's bytecode: {compiled}")
    for side in sides:
        print(f"  {side.name:22s} {' '.join(side.command)} CLIP")

    runs: dict[str, list[Run]] = {side.name: [] for side in sides}
    startups: dict[str, list[float]] = {side.name: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="faced-bench-") as scratch:
        outputs = {
            side.name: Path(scratch) / f"{side.name.replace('/', '-')}.jsonl" for side in sides
        }
        for repetition in range(args.repeat):
            # Alternate the order so no side always runs on a warmer (or busier) machine.
            order = sides if repetition % 2 == 0 else sides[::-1]
            for side in order:
                measured = run(side, clip, args.core, outputs[side.name])
                if measured.lines != args.frames:
                    raise SystemExit(
                        f"{side.name} wrote {measured.lines} lines for {args.frames} frames"
                    )
                runs[side.name].append(measured)
                startups[side.name].append(
                    run(side, startup_clip, args.core, Path(scratch) / "startup.jsonl").wall_s
                )
                print(
                    f"  run {repetition + 1} {side.name:22s} {measured.wall_s:6.2f} s wall  "
                    f"{measured.cpu_s:6.2f} s CPU  "
                    f"peak RSS {measured.peak_rss_mib:6.1f} MiB",
                    flush=True,
                )
        agreement = {
            side.name: blendshape_agreement(outputs[side.name], outputs[baseline.name])
            for side in faced_sides
            if BARE not in side.name
        }

    def median_wall(name: str) -> float:
        return statistics.median(r.wall_s for r in runs[name])

    def per_frame_ms(name: str) -> float:
        return (median_wall(name) - statistics.median(startups[name])) / (args.frames - 1) * 1e3

    def peak(name: str) -> float:
        return max(r.peak_rss_mib for r in runs[name])

    def median_cpu(name: str) -> float:
        return statistics.median(r.cpu_s for r in runs[name])

    metrics = [
        ("wall time, median (s)", median_wall, "{:.2f}"),
        ("CPU time user+sys, median (s)", median_cpu, "{:.2f}"),
        ("ms/frame, whole process", lambda n: median_wall(n) / args.frames * 1e3, "{:.2f}"),
        ("start-up, 1-frame clip (s)", lambda n: statistics.median(startups[n]), "{:.2f}"),
        ("ms/frame after start-up", per_frame_ms, "{:.2f}"),
        ("frames/s after start-up", lambda n: 1e3 / per_frame_ms(n), "{:.1f}"),
        ("peak RSS, max (MiB)", peak, "{:.1f}"),
    ]
    names = [side.name for side in sides]
    width = max(len(name) for name in names) + 2
    print()
    print(f"{'':30s}" + "".join(f"{n:>{width}s}" for n in names))
    for label, value, fmt in metrics:
        print(f"{label:30s}" + "".join(f"{fmt.format(value(n)):>{width}s}" for n in names))
    print(f"{'wall / MediaPipe':30s}" + "".join(
        f"{median_wall(n) / median_wall(baseline.name):>{width}.3f}" for n in names
    ))  # fmt: skip
    print(f"{'CPU / MediaPipe':30s}" + "".join(
        f"{median_cpu(n) / median_cpu(baseline.name):>{width}.3f}" for n in names
    ))  # fmt: skip
    print(f"{'frames with a face':30s}" + "".join(
        f"{runs[n][-1].frames_with_face:>{width}d}" for n in names
    ))  # fmt: skip
    for side in faced_sides:
        if side.name not in agreement:
            continue
        mean_delta, max_delta, compared = agreement[side.name]
        print(
            f"blendshapes, {side.name} vs MediaPipe over {compared} frames: "
            f"mean |Δ| {mean_delta:.4f}, max |Δ| {max_delta:.4f}"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    def goal_of(side: Side) -> float:
        if BARE in side.name:
            return BARE_GOAL_RATIO
        return INT8_GOAL_RATIO if "/int8" in side.name else GOAL_RATIO

    mp_wall, mp_cpu = median_wall(baseline.name), median_cpu(baseline.name)
    for side in faced_sides:
        goal = goal_of(side)
        wall_ratio = median_wall(side.name) / mp_wall
        cpu_ratio = median_cpu(side.name) / mp_cpu
        print(
            f"goal {side.name}/MediaPipe time <= {goal}: wall {wall_ratio:.3f} "
            f"({verdict(wall_ratio <= goal)}), CPU {cpu_ratio:.3f} ({verdict(cpu_ratio <= goal)}); "
            f"peak RSS <= MediaPipe's: {verdict(peak(side.name) <= peak(baseline.name))}"
        )
    # Round by round (each side's run against MediaPipe's of the same round): how far the
    # machine moved the ratio during this very run, and how often the goal held.
    for side in faced_sides:
        goal = goal_of(side)
        paired = [
            mine.wall_s / theirs.wall_s
            for mine, theirs in zip(runs[side.name], runs[baseline.name], strict=True)
        ]
        held = sum(ratio <= goal for ratio in paired)
        print(
            f"{side.name}/MediaPipe wall, round by round: {min(paired):.3f} to "
            f"{max(paired):.3f}, median {statistics.median(paired):.3f}; "
            f"<= {goal} in {held} of {len(paired)} rounds"
        )
    by_name = {side.name: side for side in faced_sides}
    for side in faced_sides:
        if side.pythonpath is not None:
            current = side.name.replace(" (before)", "")
            print(
                f"{current}: CPU {median_cpu(current):.2f} s against {median_cpu(side.name):.2f} "
                f"s before ({median_cpu(current) / median_cpu(side.name) - 1:+.1%}), wall "
                f"{median_wall(current) / median_wall(side.name) - 1:+.1%}"
            )
    for backend in ("litert", "onnxruntime"):
        fp32, int8 = f"faced {backend}/fp32", f"faced {backend}/int8"
        if fp32 in by_name and int8 in by_name:
            print(
                f"goal {int8} peak RSS <= {fp32}'s: {peak(int8):.1f} vs {peak(fp32):.1f} MiB "
                f"({verdict(peak(int8) <= peak(fp32))})"
            )
    if "faced onnxruntime/fp32" in by_name and "faced litert/fp32" in by_name:
        ratio = median_cpu("faced onnxruntime/fp32") / median_cpu("faced litert/fp32")
        print(
            f"goal onnxruntime/fp32 no slower than litert/fp32: CPU ratio {ratio:.3f} "
            f"({verdict(ratio <= 1.0)})"
        )
    load = os.getloadavg()[0]
    if load > 1.5:
        # Other processes shared the cores: wall times wander, CPU times much less.
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: wall times are noisy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
