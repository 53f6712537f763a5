"""`faced analyze`: images, directories, videos, JSON lines, and bad paths."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faced.cli import main
from faced.commands import analyze as analyze_command
from faced.vision.blendshapes import ARKIT_NAMES
from tests.data import load_rgb

photo = load_rgb


@pytest.fixture
def lenna_file(tmp_path: Path) -> Path:
    path = tmp_path / "lenna.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(photo("lenna.png"), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    """A 12-frame 320x240 MJPEG clip of a face sliding sideways."""
    face = cv2.resize(cv2.cvtColor(photo("lenna.png"), cv2.COLOR_RGB2BGR), (200, 200))
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(12):
        frame = np.full((240, 320, 3), 80, dtype=np.uint8)
        frame[20:220, 20 + 4 * i : 220 + 4 * i] = face
        writer.write(frame)
    writer.release()
    return path


def test_jsonl_image(lenna_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(lenna_file), "--jsonl", "--landmarks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["source"] == str(lenna_file)
    assert "frame" not in doc
    assert doc["face_found"] is True
    assert set(doc["blendshapes"]) == set(ARKIT_NAMES)
    assert len(doc["landmarks"]) == 478
    assert len(doc["eyes"]["left"]["gaze"]) == 2


def test_human_summary_and_bad_paths_do_not_stop_the_rest(
    lenna_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(lenna_file.read_bytes()[:300])
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    missing = tmp_path / "missing.jpg"
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(bytes(range(256)) * 20)
    paths = [missing, corrupt, text, bad_video, lenna_file]
    status = main(["analyze", *map(str, paths)])
    assert status == 1
    captured = capsys.readouterr()
    assert f"{lenna_file}: 1 face; yaw" in captured.out
    errors = [e for e in captured.err.splitlines() if e.startswith("faced analyze: ")]
    assert len(errors) == 4
    assert any(str(bad_video) in e and "cannot be opened as a video" in e for e in errors)
    assert any(str(missing) in e and "no such file" in e for e in errors)
    assert any(str(corrupt) in e and "JPEG" in e for e in errors)
    assert any(str(text) in e and "not a JPEG, PNG or WebP" in e for e in errors)


def test_directory_is_searched(lenna_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = lenna_file.parent / "more"
    nested.mkdir()
    (nested / "copy.jpg").write_bytes(lenna_file.read_bytes())
    assert main(["analyze", str(lenna_file.parent), "--jsonl"]) == 0
    sources = [json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()]
    assert sources == [str(lenna_file), str(nested / "copy.jpg")]


def test_video_one_line_per_frame_with_tracking(
    clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["analyze", str(clip_file), "--jsonl"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["frame"] for d in docs] == list(range(12))
    assert all(d["source"] == str(clip_file) for d in docs)
    assert all(d["face_found"] for d in docs)
    assert [d["timestamp_ms"] for d in docs[:3]] == [0, 40, 80]
    # Detection on the first frame only; afterwards the face is tracked.
    assert docs[0]["timing_ms"]["detect"] > 0
    assert all(d["timing_ms"]["detect"] == 0 for d in docs[1:])


def test_video_summary(clip_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(clip_file), "--num-faces", "2"]) == 0
    out = capsys.readouterr().out
    # Looking for a second face runs the detector on every frame: each is decoded whole.
    assert "12 frames, face in 12, detector ran on 12, 0 decoded as the face's band" in out
    assert main(["analyze", str(clip_file)]) == 0
    out = capsys.readouterr().out
    assert "12 frames, face in 12, detector ran on 1, 11 decoded as the face's band" in out


def test_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["analyze", "x.jpg", "--num-faces", "9"])
    assert exited.value.code == 2
    assert "more than 8" in capsys.readouterr().err


def test_analyze_imports_only_its_own_command(clip_file: Path) -> None:
    """`faced analyze` as a program: the other commands' modules (the daemon's, the benches',
    MCP's) and asyncio are start-up time it never uses; its JSON lines still come out."""
    code = (
        "import json, sys\n"
        "from faced.cli import main\n"
        "sys.argv = ['faced', 'analyze', sys.argv[1], '--jsonl']\n"
        "status = main()\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('faced.commands.'))\n"
        "print(json.dumps({'status': status, 'commands': loaded, "
        "'asyncio': 'asyncio' in sys.modules}))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code, str(clip_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=120,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 12 + 1  # a line per frame, then the report
    assert json.loads(lines[0])["frame"] == 0
    assert json.loads(lines[-1]) == {
        "status": 0,
        "commands": ["faced.commands.analyze"],
        "asyncio": False,
    }


def test_every_command_is_listed_without_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    for command in ("serve", "config", "models", "analyze", "bench", "audio", "ctl", "mcp"):
        assert command in listed


@pytest.fixture
def long_clip_file(tmp_path: Path) -> Path:
    """A 150-frame 320x240 MJPEG clip of a face sliding back and forth."""
    face = cv2.resize(cv2.cvtColor(photo("lenna.png"), cv2.COLOR_RGB2BGR), (200, 200))
    path = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
    for i in range(150):
        frame = np.full((240, 320, 3), 80, dtype=np.uint8)
        x = 20 + abs(i % 50 - 25) * 4
        frame[20:220, x : x + 200] = face
        writer.write(frame)
    writer.release()
    return path


def _progress_frames(source: Path, lines: list[str]) -> list[int]:
    pattern = re.compile(rf"{re.escape(str(source))}: frame (\d+)/150 \(\d+ frames/s\)")
    frames = []
    for line in lines:
        match = pattern.fullmatch(line)
        assert match, f"not a progress line: {line!r}"
        frames.append(int(match.group(1)))
    return frames


def test_long_video_reports_progress_on_stderr(
    long_clip_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interval is shortened (it is seconds; the clip takes well under one) so any
    # machine analyzes the clip across several intervals.
    monkeypatch.setattr(analyze_command, "PROGRESS_EVERY_S", 0.002)
    assert main(["analyze", str(long_clip_file), "--jsonl"]) == 0
    captured = capsys.readouterr()
    # stdout stays pure JSON lines, one per frame; progress goes to stderr, a line each.
    assert len([json.loads(line) for line in captured.out.splitlines()]) == 150
    frames = _progress_frames(long_clip_file, captured.err.splitlines())
    assert frames, "no progress line"
    assert frames == sorted(set(frames)) and frames[0] >= 1 and frames[-1] <= 150


class _Terminal(io.StringIO):
    """stderr as a terminal (the OS boundary): progress rewrites one line in place."""

    def isatty(self) -> bool:
        return True


def test_long_video_progress_on_a_terminal_is_one_line_rewritten(
    long_clip_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyze_command, "PROGRESS_EVERY_S", 0.01)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["analyze", str(long_clip_file)]) == 0
    assert "150 frames, face in" in capsys.readouterr().out
    shown = terminal.getvalue()
    assert shown.startswith("\r") and shown.endswith("\n") and shown.count("\n") == 1
    frames = _progress_frames(long_clip_file, shown.rstrip("\n").split("\r")[1:])
    assert frames and frames == sorted(set(frames))
