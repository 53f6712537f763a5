"""`faced bench api` runs end to end (tiny durations: this checks it works, not speed)."""

from __future__ import annotations

import asyncio
import shutil
import sys

import pytest

from tests.conftest import REPO_ROOT


async def _faced(*args: str, limit_s: float = 90) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faced",
        *args,
        cwd=str(REPO_ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(limit_s):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_bench_api_prints_faced_beside_bare_aiohttp() -> None:
    code, out, err = await _faced(
        "bench", "api", "--seconds", "0.3", "--fanout-seconds", "0.3", "--viewers", "3"
    )
    assert code == 0, err
    assert "faced" in out
    assert "bare aiohttp" in out
    for row in (
        "POST /api/state  req/s",
        "ratio faced / bare",
        "server CPU us/request",
        "CPU ratio bare / faced",
        "p50 ms",
        "p99 ms",
    ):
        assert row in out
    assert "goals" in out


async def test_bench_needs_a_subject_and_checks_its_numbers() -> None:
    code, _out, err = await _faced("bench")
    assert code == 2
    assert "choose a subject: api, pipeline" in err
    code, _out, err = await _faced("bench", "api", "--rate", "0")
    assert code == 2
    assert "--rate must be positive" in err
    code, _out, err = await _faced("bench", "api", "--instructions", "-1")
    assert code == 2
    assert "--instructions must be 0 (off) or positive" in err
    code, _out, err = await _faced("bench", "api", "--instruction-rounds", "0")
    assert code == 2
    assert "--instruction-rounds must be at least 1" in err


@pytest.mark.slow
@pytest.mark.long_only  # two daemons under callgrind take minutes: `make soak` runs it
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
async def test_bench_api_counts_instructions_under_callgrind() -> None:
    code, out, err = await _faced(
        "bench",
        "api",
        "--seconds",
        "0.3",
        "--rounds",
        "1",
        "--fanout-seconds",
        "0.3",
        "--fanout-rounds",
        "1",
        "--viewers",
        "3",
        "--instructions",
        "50",
        "--instruction-rounds",
        "2",
        limit_s=600,
    )
    assert code == 0, err
    for row in ("instructions/request", "idle instructions/s", "cost of the metrics"):
        assert row in out
