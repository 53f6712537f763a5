"""`faced bench soak` against the real daemon: nothing lost, memory bounded.

The very same test is the short soak of `make test` (45 s) and the long one of `make soak`
(10 minutes, FACED_LONG_RUNS=1): 100 viewers, 5 agents at 50 messages/s, live tracking on a
file camera and analyze requests. Messages lost and RSS growth are asserted in both; the
event-loop lag p99 (goal ≤ 10 ms) only in the long run: the shared machines `make test` runs
on stall a process for whole seconds, and a timing figure from them says more about the
neighbours than about faced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faced.bench import soak
from tests.helpers import run_seconds

REPO = Path(__file__).resolve().parents[2]
SECONDS = run_seconds(45, 600)
LONG = SECONDS > 60
WARM_UP_S = 60 if LONG else 15
# The long run holds the goal; 30 s after a 15 s warm-up, buffers are still finding
# their working size (more so on a loaded machine), so the short run gets twice the room.
GROWTH_BOUND = soak.GROWTH_GOAL if LONG else 2 * soak.GROWTH_GOAL


@pytest.mark.soak
@pytest.mark.serial
@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 180)
def test_soak_loses_nothing_and_memory_stays_bounded(tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    command = [sys.executable, "-m", "faced", "bench", "soak", "--minutes", str(SECONDS / 60)]
    command += ["--warm-up", str(WARM_UP_S), "--sample-s", "10" if LONG else "3"]
    command += ["--json", str(figures)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=SECONDS + 150,
        check=False,
        cwd=REPO,
    )
    # 1: a goal was missed (judged below, each by name); anything else is a failure to run.
    assert done.returncode in (0, 1), done.stderr[-3000:]
    print(done.stdout)
    result = json.loads(figures.read_text())
    assert result["broadcasts"] > 0 and result["healthy"] > 0, done.stdout
    assert result["lost"] == 0, done.stdout
    assert result["growth"] < GROWTH_BOUND, done.stdout
    if LONG:
        assert result["lag_p99_ms"] <= soak.LAG_GOAL_MS, done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--minutes", "0.1", "--warm-up", "10"], "--warm-up must be shorter than the run"),
        (["--viewers", "0"], "expected a whole number > 0, got '0'"),
        (["--rate", "fast"], "expected a number > 0, got 'fast'"),
    ],
)
def test_soak_refuses_bad_arguments_in_one_line(arguments: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faced", "bench", "soak", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
