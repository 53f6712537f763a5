"""faced.interpreter: a started daemon's switch interval and frozen start-up, undone at
cleanup (real daemons in this process, started and cleaned up by aiohttp's runner)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

from faced.app import create_app
from faced.interpreter import SWITCH_INTERVAL_S


@pytest.fixture
def interval_before() -> Iterator[float]:
    """A switch interval that is not Python's default, so that restoring it shows."""
    original = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    yield 0.004
    sys.setswitchinterval(original)


def _collector_sees(thing: object) -> bool:
    # get_objects() lists the three generations, not the frozen objects.
    return any(candidate is thing for candidate in gc.get_objects())


async def _started(make_config: Callable[..., Any]) -> web.AppRunner:
    runner = web.AppRunner(create_app(make_config(camera={"source": "none"})))
    await runner.setup()
    return runner


async def test_a_started_daemon_freezes_start_up_and_shortens_the_switch_interval(
    make_config: Callable[..., Any], interval_before: float
) -> None:
    made_before_start = [object()]  # a container: the collector tracks it
    assert _collector_sees(made_before_start)
    runner = await _started(make_config)
    try:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert gc.get_freeze_count() > 0
        assert not _collector_sees(made_before_start)
        made_after_start = [object()]
        assert _collector_sees(made_after_start)  # what the daemon allocates later is not
    finally:
        await runner.cleanup()
    assert sys.getswitchinterval() == pytest.approx(interval_before)
    assert gc.get_freeze_count() == 0
    assert _collector_sees(made_before_start)


async def test_settings_stay_until_the_last_daemon_of_the_process_cleans_up(
    make_config: Callable[..., Any], interval_before: float
) -> None:
    first = await _started(make_config)
    second = await _started(make_config)
    try:
        await first.cleanup()
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert gc.get_freeze_count() > 0
    finally:
        await second.cleanup()
    assert sys.getswitchinterval() == pytest.approx(interval_before)
    assert gc.get_freeze_count() == 0
