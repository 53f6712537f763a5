"""`faced bench memory` runs end to end against the real daemon and prints its table.

No figure is asserted: memory and start time are the benchmark's to print (docs/performance.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from faced.bench import memory as bench_memory

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    bench_memory.add_arguments(parser)
    return parser


@pytest.mark.slow
def test_bench_memory_prints_every_phase() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "faced",
            "bench",
            "memory",
            "--minutes",
            "0.02",
            "--warm-up",
            "1",
            "--load-s",
            "1",
            "--starts",
            "1",
            "--no-reference",
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split("  ")[0] for line in done.stdout.splitlines()}
    assert {
        "--camera none, after READY",
        "--camera none, settled",
        "--camera demo, tracking, after 1 s",
        "+ 50 viewers on /ws/viewer",
        "idle again, 0.02 min later",
        "idle phase, RSS lowest - highest (every 10 s)",
        "start: spawn → READY=1 (s, median)",
        "start: spawn → first tracking result (s, median)",
    } <= rows
    # The analyze phase was answered (its worker loaded its models on first use).
    load = next(line for line in done.stdout.splitlines() if line.startswith("+ analyze load"))
    assert not load.startswith("+ analyze load (0 answers")


@pytest.mark.parametrize(
    "argv", [["--minutes", "0"], ["--viewers", "0"], ["--clients", "x"], ["--starts", "-1"]]
)
def test_bench_memory_refuses_bad_arguments(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2
    assert "expected" in capsys.readouterr().err
