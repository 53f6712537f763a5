"""`faced bench perception`: how far off distance_m is, and how late person events come.

Owns: these two measurements and their tables. Does not own: perception (faced.perception),
the daemon it measures (``faced serve`` in a child process) or the photographs (tests.data;
the demo photo, faced.devices.demo_photo, where the test data is not fetched). (Its cost
per frame is in `faced bench pipeline`, beside the stages.)

1. **Distance** — each photograph is scaled so its face is 320 … 40 px wide on a 640×480
   frame (the camera's ``hfov_deg`` 66°) and run through the real pipeline (IMAGE mode,
   landmarks on): the table gives the iris's size, which measure was used (iris or the
   eyes' distance apart), the distance read and its error against the truth of the
   scaling: the distance the largest face reads, times how much smaller this one is (a
   photograph has no true distance; what is checked is that the reading follows the size).
2. **Event latency** — a ``file:`` clip (the demo photo for 1.5 s, then 3 s of nobody,
   looped) plays into a real daemon; an SSE client on /api/person/events and a
   /ws/tracking client (the frames' capture times) run here. For ``arrived`` and
   ``attention_start`` the latency is from the capture of the first frame with the face,
   for ``attention_end`` and ``left`` from the first frame without: debounce included
   (presence: a face on 60 % of the frames of 0.3 s; attention's 0.3 s dwell, counted from
   the arrival; 0.5 s before attention ends; 2 s before someone counts as gone). The last
   column is from the deciding frame's capture to the event's arrival: the pipeline, the
   loop and the HTTP.
3. **Turning to the box** — a second run: takeo.ppm (test data) facing the camera for 2 s,
   then turned 50° away for 2 s (faced.vision.synthetic.turn_head: the tracker reads about
   25° of yaw, beyond the attention cone), looped. ``attention_end`` is timed from the
   first turned frame, ``attention_start`` from the first frame facing again (a frame's
   place in the clip is its camera frame counter modulo the clip's length): the dwells
   (0.5 s off, 0.3 s on) included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from faced.bench.server import free_port, running_server

WIDTH, HEIGHT = 640, 480
HFOV_DEG: Final = 66.0
FACE_SIZES: Final = (320, 240, 160, 120, 100, 80, 60, 40)
PHOTOS: Final = ("tongue.jpg", "lenna.png", "takeo.ppm")
FACE_FRAMES, EMPTY_FRAMES = 45, 90
FACING_FRAMES, TURNED_FRAMES = 60, 60
TURN_DEG: Final = 50.0
TURN_PHOTO: Final = "takeo.ppm"
_TEST_DATA = Path(__file__).resolve().parents[2] / "tests" / ".data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="length of the latency run (30)"
    )
    parser.add_argument(
        "--skip-latency", action="store_true", help="the distance table only (no daemon)"
    )


def run(args: argparse.Namespace) -> int:
    if not args.seconds > 0:
        print("faced bench perception: --seconds must be > 0", file=sys.stderr)
        return 2
    _distance_table()
    if args.skip_latency:
        return 0
    with tempfile.TemporaryDirectory(prefix="faced-bench-perception-") as directory:
        clip = _clip(Path(directory) / "comes-and-goes.avi")
        turn = _turn_clip(Path(directory) / "turns.avi")
        try:
            samples = asyncio.run(_latency(clip, args.seconds, _face_found))
            turns = asyncio.run(_latency(turn, args.seconds, _facing)) if turn else {}
        except RuntimeError as exc:
            print(f"faced bench perception: {exc}", file=sys.stderr)
            return 1
    _latency_table(samples, args.seconds)
    if turn is None:
        print(f"turning to the box: {TURN_PHOTO} not in tests/.data (make test-data): skipped")
    else:
        _turn_table(turns, args.seconds)
    return 0


# --- distance ------------------------------------------------------------------------------


def _photos() -> list[tuple[str, Any]]:
    from faced.vision.synthetic import load_photo  # noqa: PLC0415

    paths = [(name, _TEST_DATA / name) for name in PHOTOS]
    found = [(name, load_photo(path)) for name, path in paths if path.is_file()]
    if found:
        return found
    from faced.devices.demo_photo import photo_path, read_verified  # noqa: PLC0415
    from faced.vision.models import default_model_dir  # noqa: PLC0415

    read_verified(default_model_dir())
    return [("demo photo", load_photo(photo_path(default_model_dir())))]


def _placed(photo: Any, face_px: float, photo_face_px: float) -> Any:
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from faced.vision.synthetic import BACKGROUND_RGB  # noqa: PLC0415

    scale = face_px / photo_face_px
    scaled = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    canvas[:] = BACKGROUND_RGB
    h, w = scaled.shape[:2]
    top, left = (HEIGHT - h) // 2, (WIDTH - w) // 2
    src = scaled[max(0, -top) : max(0, -top) + HEIGHT, max(0, -left) : max(0, -left) + WIDTH]
    y, x = max(0, top), max(0, left)
    canvas[y : y + src.shape[0], x : x + src.shape[1]] = src
    return canvas


def _distance_table() -> None:
    import math  # noqa: PLC0415

    from faced.perception import IRIS_MIN_PX, distance_of  # noqa: PLC0415
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    pipeline = FacePipeline.load(None, detector="auto")
    print(
        f"distance_m on photographs scaled on a {WIDTH}x{HEIGHT} frame, hfov {HFOV_DEG:.0f}°: "
        "error against the largest face's reading times the scale"
    )
    print(f"{'photo':<12} {'face px':>7} {'iris px':>7} {'measure':>8} {'distance m':>10} "
          f"{'expected m':>10} {'error %':>8}")  # fmt: skip
    errors: dict[int, list[float]] = {}
    for name, photo in _photos():
        analysis = pipeline.analyze(photo, landmarks=True)
        if not analysis.faces:
            print(f"{name:<12} no face found")
            continue
        photo_face_px = analysis.faces[0].bbox[2] * photo.shape[1]
        reference: tuple[float, float] | None = None
        for size in FACE_SIZES:
            found = pipeline.analyze(_placed(photo, size, photo_face_px), landmarks=True)
            if not found.faces:
                print(f"{name:<12} {size:>7} {'no face found':>30}")
                continue
            face = found.faces[0]
            width_px = face.bbox[2] * WIDTH
            points = face.landmarks or []
            a, b = points[469], points[471]
            iris = math.hypot((a[0] - b[0]) * WIDTH, (a[1] - b[1]) * HEIGHT)
            distance = distance_of(face, WIDTH, HEIGHT, HFOV_DEG) or math.nan
            if reference is None:
                reference = (distance, width_px)
            expected = reference[0] * reference[1] / width_px
            error = 100 * (distance / expected - 1)
            errors.setdefault(size, []).append(abs(error))
            measure = "iris" if iris >= IRIS_MIN_PX else "eyes"
            print(f"{name:<12} {width_px:>7.0f} {iris:>7.1f} {measure:>8} {distance:>10.3f} "
                  f"{expected:>10.3f} {error:>+8.1f}")  # fmt: skip
    print("mean |error| by face width: " + ", ".join(
        f"{size} px {statistics.fmean(v):.1f} %" for size, v in errors.items()
    ))  # fmt: skip


# --- event latency ---------------------------------------------------------------------------


def _clip(path: Path) -> Path:
    from faced.devices.demo_photo import photo_path, read_verified  # noqa: PLC0415
    from faced.vision.models import default_model_dir  # noqa: PLC0415
    from faced.vision.synthetic import (  # noqa: PLC0415
        Motion,
        load_photo,
        render_frame,
        write_face_then_nobody,
    )

    read_verified(default_model_dir())
    rgb = load_photo(photo_path(default_model_dir()))
    still = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
    return write_face_then_nobody(
        path, render_frame(rgb, 0, motion=still), FACE_FRAMES, EMPTY_FRAMES
    )


def _turn_clip(path: Path) -> Path | None:
    """Facing the camera, then turned away, looped; None without the test photograph."""
    import cv2  # noqa: PLC0415

    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415
    from faced.vision.synthetic import (  # noqa: PLC0415
        DEFAULT_SIZE,
        Motion,
        load_photo,
        render_frame,
        turn_head,
    )

    source = _TEST_DATA / TURN_PHOTO
    if not source.is_file():
        return None
    still = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)
    facing = render_frame(load_photo(source), 0, motion=still)
    face = FacePipeline.load(None, detector="auto").analyze(facing).faces[0]
    width = face.bbox[2] * DEFAULT_SIZE[0]
    centre = face.bbox[0] * DEFAULT_SIZE[0] + width / 2
    turned = turn_head(facing, TURN_DEG, centre, 0.75 * width)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, DEFAULT_SIZE)
    try:
        for index in range(FACING_FRAMES + TURNED_FRAMES):
            frame = facing if index < FACING_FRAMES else turned
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return path


def _face_found(result: dict[str, Any]) -> bool:
    return bool(result["face_found"])


def _facing(result: dict[str, Any]) -> bool:
    """Whether the frame is of the turn clip's facing part (the file camera counts from 1)."""
    return (result["frame"] - 1) % (FACING_FRAMES + TURNED_FRAMES) < FACING_FRAMES


async def _latency(clip: Path, seconds: float, state: Any) -> dict[str, list[tuple[float, float]]]:
    """Per event kind: (ms from the change's first frame, ms from the deciding frame);
    ``state`` tells from a tracking result whether the face is there (or facing)."""
    import aiohttp  # noqa: PLC0415

    port = free_port()
    command = [sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--camera", f"file:{clip}", "--display", "none"]
    url = f"http://127.0.0.1:{port}"
    face_at: list[int] = []  # capture ms of each first frame with a face
    gone_at: list[int] = []  # … and without one
    samples: dict[str, list[tuple[float, float]]] = {}
    async with running_server(command, port), aiohttp.ClientSession() as session:

        async def frames() -> None:
            seen = None
            async with session.ws_connect(f"{url}/ws/tracking?fields=face_found") as ws:
                async for message in ws:
                    result = json.loads(message.data)
                    found = state(result)
                    if found != seen:
                        (face_at if found else gone_at).append(result["ts"])
                    seen = found

        async def events() -> None:
            async with session.get(f"{url}/api/person/events") as response:
                async for line in response.content:
                    if not line.startswith(b"data: "):
                        continue
                    now_ms = time.time() * 1000
                    event = json.loads(line[6:])
                    kind = event["event"]
                    starts = gone_at if kind in ("left", "attention_end") else face_at
                    before = [ts for ts in starts if ts <= event["ts"]]
                    if not before:
                        continue  # the run began mid-change
                    samples.setdefault(kind, []).append((now_ms - before[-1], now_ms - event["ts"]))

        tasks = [asyncio.create_task(frames()), asyncio.create_task(events())]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return samples


def _quantiles(values: list[float]) -> str:
    if not values:
        return f"{'-':>17}"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):>7.0f} / {p90:>7.0f}"


def _latency_table(samples: dict[str, list[tuple[float, float]]], seconds: float) -> None:
    print(
        f"person events over SSE, {seconds:.0f} s of a looped clip (face {FACE_FRAMES / 30:.1f} s,"
        f" nobody {EMPTY_FRAMES / 30:.1f} s); median / p90 ms"
    )
    print(f"{'event':<16} {'n':>3} {'from the change':>17} {'debounce':>9} "
          f"{'deciding frame → SSE':>21}")  # fmt: skip
    # Presence needs a face on 60 % of the frames of 0.3 s; attention's dwell counts from
    # the arrival.
    debounce = {"arrived": "≥180 ms", "attention_start": "+300 ms", "attention_end": "500 ms",
                "left": "2000 ms"}  # fmt: skip
    for kind in ("arrived", "attention_start", "attention_end", "left"):
        values = samples.get(kind, [])
        change = [v[0] for v in values]
        delivery = [v[1] for v in values]
        note = debounce.get(kind, "-")
        print(f"{kind:<16} {len(values):>3} {_quantiles(change)} {note:>9} "
              f"{_quantiles(delivery):>21}")  # fmt: skip


def _turn_table(samples: dict[str, list[tuple[float, float]]], seconds: float) -> None:
    print(
        f"turning to the box: {seconds:.0f} s of {TURN_PHOTO} facing {FACING_FRAMES / 30:.1f} s,"
        f" turned {TURN_DEG:.0f}° {TURNED_FRAMES / 30:.1f} s, looped; median / p90 ms"
    )
    print(f"{'event':<16} {'n':>3} {'from the turn':>17} {'debounce':>9} "
          f"{'deciding frame → SSE':>21}")  # fmt: skip
    notes = {"attention_start": "300 ms", "attention_end": "500 ms"}
    for kind in ("attention_start", "attention_end"):
        values = samples.get(kind, [])
        print(f"{kind:<16} {len(values):>3} {_quantiles([v[0] for v in values])} "
              f"{notes[kind]:>9} {_quantiles([v[1] for v in values]):>21}")  # fmt: skip
