"""`faced analyze PATH…`: run the face pipeline on images, directories and video files.

Owns: reading the paths and printing the results. Does not own: the analysis
(faced.vision.pipeline), decoding (faced.vision.image_io, faced.vision.video). Images go
through IMAGE mode (detection every time),
videos through a tracker (VIDEO mode: tracking, smoothing) with timestamps from the file's
frame rate. ``--jsonl`` writes one analyze document per image or frame, plus ``source``
(and ``frame`` for video); otherwise a short human summary. A path that cannot be read is
reported on stderr in one line and the others are still processed; the exit status is 1
if any failed. Heavy imports (numpy, OpenCV, LiteRT) happen only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from faced.commands import at_least

if TYPE_CHECKING:
    from faced.schemas.analysis import Analysis
    from faced.vision.pipeline import FacePipeline

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mjpeg", ".mjpg", ".mpg", ".mpeg", ".wmv"}
)
PROGRESS_EVERY_S = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="analyze faces in images, directories of images or video files",
        description="Run the face pipeline on each PATH: images (JPEG, PNG, WebP), "
        "directories (searched recursively) or video files (tracking across frames).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument("--landmarks", action="store_true", help="include the 478 landmarks")
    parser.add_argument(
        "--no-blendshapes",
        action="store_true",
        help="do not run the blendshape model (faster; results carry no blendshapes)",
    )
    parser.add_argument(
        "--jsonl", action="store_true", help="one JSON document per image or video frame"
    )
    parser.add_argument(
        "--num-faces", type=_faces, default=None, help="faces to look for, 1-8 (config)"
    )
    parser.add_argument("--threads", type=_POSITIVE, default=None, help="inference threads")
    parser.add_argument(
        "--no-smoothing", action="store_true", help="video: report raw, unsmoothed landmarks"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="model directory")
    parser.add_argument(
        "--backend", choices=("litert", "onnxruntime"), default=None, help="(vision.backend)"
    )
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None, help="(config)")
    parser.add_argument(
        "--detector",
        choices=("short", "full", "auto"),
        default=None,
        help="face detector range (vision.detector)",
    )
    parser.set_defaults(func=run)


_POSITIVE = at_least(int, 1)


def _faces(text: str) -> int:
    value = _POSITIVE(text)
    if value > 8:
        raise argparse.ArgumentTypeError(f"{value} is more than 8")
    return value


class _Output:
    """Writes results; JSON lines go out as bytes, spliced with source/frame keys."""

    def __init__(self, jsonl: bool, stream: IO[bytes], text: IO[str]) -> None:
        import msgspec  # noqa: PLC0415

        self.jsonl = jsonl
        self._stream = stream
        self._text = text
        self._encoder = msgspec.json.Encoder()

    def image(self, source: str, result: Analysis) -> None:
        if self.jsonl:
            self._line(source, None, result)
        else:
            self._text.write(f"{source}: {summarize(result)}\n")

    def frame(self, source: str, index: int, result: Analysis) -> None:
        self._line(source, index, result)

    def _line(self, source: str, frame: int | None, result: Analysis) -> None:
        body = self._encoder.encode(result)
        prefix = b'{"source":' + self._encoder.encode(source)
        if frame is not None:
            prefix += b',"frame":' + str(frame).encode()
        # body is a JSON object: splice our keys in front of its own.
        self._stream.write(prefix + b"," + body[1:] + b"\n")


def summarize(result: Analysis) -> str:
    if not result.face_found:
        return "no face"
    parts = [f"{len(result.faces)} face{'s' if len(result.faces) > 1 else ''}"]
    head, eyes, shapes = result.head, result.eyes, result.blendshapes
    if head is not None:
        parts.append(f"yaw {head.yaw:+.0f}° pitch {head.pitch:+.0f}° roll {head.roll:+.0f}°")
    if eyes is not None:
        lx, ly = eyes.left.gaze
        rx, ry = eyes.right.gaze
        parts.append(
            f"gaze L({lx:+.2f},{ly:+.2f}) R({rx:+.2f},{ry:+.2f}) "
            f"open L{eyes.left.openness:.2f} R{eyes.right.openness:.2f}"
        )
    if shapes:
        top = sorted(shapes.items(), key=lambda kv: kv[1], reverse=True)[:4]
        parts.append(", ".join(f"{name} {score:.2f}" for name, score in top))
    parts.append(f"{result.timing_ms.total:.1f} ms")
    return "; ".join(parts)


def _expand(paths: list[Path], errors: list[str]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            )
            if not found:
                errors.append(f"{path}: directory holds no images or videos")
            yield from found
        elif path.exists():
            yield path
        else:
            errors.append(f"{path}: no such file or directory")


def _report(message: str) -> None:
    print(f"faced analyze: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from faced import config  # noqa: PLC0415

    try:
        overrides = {
            key: value
            for key, value in (
                ("backend", args.backend),
                ("precision", args.precision),
                ("detector", args.detector),
            )
            if value is not None
        }
        settings = config.load(overrides={"vision": overrides} if overrides else None).vision
    except config.ConfigError as exc:
        _report(str(exc))
        return config.EX_CONFIG
    from faced.vision.models import ModelError  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    try:
        pipeline = FacePipeline.load(
            model_dir=args.model_dir or settings.model_dir or None,
            threads=args.threads or settings.threads,
            num_faces=args.num_faces or settings.num_faces,
            runtime=Runtime.from_config(settings, threads=args.threads),
            detector=settings.detector,
        )
    except ModelError as exc:
        _report(str(exc))
        return 1
    output = _Output(args.jsonl, sys.stdout.buffer, sys.stdout)
    errors: list[str] = []
    failed = 0
    for path in _expand(list(args.paths), errors):
        while errors:
            _report(errors.pop(0))
            failed += 1
        try:
            _analyze_path(path, pipeline, output, args, settings.max_megapixels)
        except _PathError as exc:
            _report(f"{path}: {exc}")
            failed += 1
    for message in errors:
        _report(message)
        failed += 1
    sys.stdout.flush()
    return 1 if failed else 0


class _PathError(Exception):
    """This path could not be analyzed; the others go on."""


def _analyze_path(
    path: Path, pipeline: FacePipeline, output: _Output, args: argparse.Namespace, limit: float
) -> None:
    from faced.vision.image_io import ImageError, decode_for_pipeline, image_format  # noqa: PLC0415

    try:
        with path.open("rb") as handle:
            head = handle.read(16)
            kind = image_format(head)
            data = head + handle.read() if kind else b""
    except OSError as exc:
        raise _PathError(exc.strerror or str(exc)) from None
    if kind is None:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise _PathError(
                "not a JPEG, PNG or WebP image, nor a video file "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})"
            )
        _analyze_video(path, pipeline, output, args)
        return
    try:
        image = decode_for_pipeline(data, max_megapixels=limit)
    except ImageError as exc:
        raise _PathError(str(exc)) from None
    output.image(
        str(path),
        pipeline.analyze(image, landmarks=args.landmarks, blendshapes=not args.no_blendshapes),
    )


def _analyze_video(
    path: Path, pipeline: FacePipeline, output: _Output, args: argparse.Namespace
) -> None:
    from faced.vision.video import VideoError, VideoReader  # noqa: PLC0415

    try:
        video = VideoReader(path, "rgba")  # the pipeline's working layout: no conversion
    except VideoError:
        raise _PathError("cannot be opened as a video") from None
    with video:
        tracker = pipeline.tracker(smoothing=not args.no_smoothing)
        progress = _Progress(str(path), video.frame_count)
        stats: dict[str, Any] = {"frames": 0, "with_face": 0, "ms": 0.0}
        source = str(path)
        # Tracked frames are decoded only where the tracker's crop will read them.
        for index, timestamp, frame in video.timed_frames(band=tracker.next_footprint):
            result = tracker.process(
                frame, timestamp, args.landmarks, blendshapes=not args.no_blendshapes
            )
            if output.jsonl:
                output.frame(source, index, result)
            stats["frames"] += 1
            stats["with_face"] += result.face_found
            stats["ms"] += result.timing_ms.total
            progress.update(index + 1)
        frames: int = stats["frames"]
        progress.done(frames)
        if frames == 0:
            raise _PathError("video has no readable frames")
        if not output.jsonl:
            print(
                f"{path}: {frames} frames, face in {stats['with_face']}, "
                f"detector ran on {tracker.detections}, "
                f"{video.band_frames} decoded as the face's band only, "
                f"{stats['ms'] / frames:.2f} ms/frame in the pipeline"
            )


class _Progress:
    """Frame progress on stderr for long videos: rewritten in place on a terminal, a line
    every few seconds otherwise."""

    def __init__(self, source: str, total: int) -> None:
        self._source = source
        self._total = total
        self._tty = sys.stderr.isatty()
        self._start = time.monotonic()
        self._next = self._start + (PROGRESS_EVERY_S if self._tty else 5 * PROGRESS_EVERY_S)
        self._shown = False

    def update(self, frames: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + (PROGRESS_EVERY_S if self._tty else 5 * PROGRESS_EVERY_S)
        of = f"/{self._total}" if self._total > 0 else ""
        rate = frames / max(now - self._start, 1e-9)
        line = f"{self._source}: frame {frames}{of} ({rate:.0f} frames/s)"
        sys.stderr.write(f"\r{line}" if self._tty else f"{line}\n")
        sys.stderr.flush()
        self._shown = True

    def done(self, frames: int) -> None:
        if self._shown and self._tty:
            sys.stderr.write("\n")
