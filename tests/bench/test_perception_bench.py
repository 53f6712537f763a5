"""`faced bench perception` and the perception row of `faced bench pipeline` run end to end
and print their tables. No timing is asserted: figures are the benchmark's to print."""

from __future__ import annotations

import argparse
import asyncio
import sys

import pytest

from faced.bench import perception as bench_perception
from faced.bench import pipeline as bench_pipeline
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _args(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser.parse_args(argv)


async def test_bench_perception_prints_the_distance_and_latency_tables() -> None:
    # A process of its own, as `faced bench api`'s test: it starts and reads a daemon.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faced",
        "bench",
        "perception",
        "--seconds",
        "6",
        cwd=str(REPO_ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(120):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    out = stdout.decode()
    assert "mean |error| by face width: 320 px 0.0 %" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert int(rows["arrived"].split()[1]) >= 1
    assert int(rows["left"].split()[1]) >= 1


def test_bench_perception_refuses_bad_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_perception.run(_args(bench_perception, ["--seconds", "0"])) == 2
    assert "--seconds must be > 0" in capsys.readouterr().err


def test_bench_pipeline_prints_perceptions_share(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--backend", "litert", "--precision", "fp32", "--frames", "20", "--detect-frames", "2"]
    assert bench_pipeline.run(_args(bench_pipeline, argv)) == 0
    out = capsys.readouterr().out
    assert "perception update (µs)" in out and "% of a tracking frame" in out
