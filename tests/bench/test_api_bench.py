"""`faced bench api` runs end to end (tiny durations: this checks it works, not speed)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.conftest import REPO_ROOT


async def _faced(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faced",
        *args,
        cwd=str(REPO_ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(90):
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
