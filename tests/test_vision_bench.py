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
        ["--frames", "6", "--detect-frames", "2", "--photo", str(path("lenna.png"))]
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
