"""The real `faced serve` process: config errors, SIGTERM, and the systemd notify protocol."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow


async def test_bad_config_key_stops_startup_with_one_line_and_exit_78(run_faced) -> None:
    faced = await run_faced(config_text="[server]\nbogus = 1\n", wait=False)
    assert await faced.wait_exit() == 78
    assert len(faced.stderr_lines) == 1, faced.stderr
    assert "unknown key server.bogus" in faced.stderr_lines[0]


async def test_sigterm_exits_0_within_3_seconds(run_faced) -> None:
    faced = await run_faced()
    started = time.monotonic()
    faced.terminate()
    assert await faced.wait_exit() == 0
    assert time.monotonic() - started < 3.0
