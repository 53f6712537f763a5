"""`faced bench pipeline` runs end to end and reports every stage (no timing asserted)."""

from __future__ import annotations

import argparse

import pytest

from faced.bench import pipeline as bench_pipeline
from tests.data import path


def test_bench_pipeline_reports_stages_baseline_and_rss(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    bench_pipeline.add_arguments(parser)
    args = parser.parse_args(
        [
            *("--frames", "6", "--detect-frames", "2", "--photo", str(path("lenna.png"))),
            *("--backend", "litert", "--precision", "fp32"),
        ]
    )
    assert bench_pipeline.run(args) == 0
    out = capsys.readouterr().out
    for label in (
        "detection  detect",
        "tracking   landmarks",
        "baseline   landmark model",
        "blendshape model",
    ):
        assert label in out
    assert "frames/s (1 detector runs)" in out
    assert "peak RSS:" in out


def test_bench_pipeline_refuses_a_missing_photo(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    bench_pipeline.add_arguments(parser)
    args = parser.parse_args(["--frames", "2", "--photo", "/nonexistent/face.png"])
    assert bench_pipeline.run(args) == 1
    assert "cannot read the face photo" in capsys.readouterr().err


def test_bench_pipeline_puts_every_back_end_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    bench_pipeline.add_arguments(parser)
    args = parser.parse_args(
        ["--frames", "4", "--detect-frames", "1", "--photo", str(path("lenna.png"))]
    )
    assert bench_pipeline.run(args) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("mode"))
    for column in ("litert/fp32", "litert/int8", "onnxruntime/fp32", "onnxruntime/int8"):
        assert column in header
    for label in ("tracking   total", "video frames/s", "peak RSS MiB", "models in use:"):
        assert label in out
    assert "face_landmarks_detector.onnx" in out  # the ONNX column ran the ONNX files
