"""The display's backlight through faced's driver changes and is restored.

The driver is faced.devices.display's. Uses the same calls the daemon makes
(``locate_backlight``, ``Display.set``) on the real ``/sys/class/backlight`` device
(``FACED_HW_BACKLIGHT`` names one; default: the first), and checks the raw sysfs values they
produce.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from faced.devices.display import BL_POWER_OFF, BL_POWER_ON, Display, locate_backlight

ROOT = Path("/sys/class/backlight")


def test_backlight_changes_through_the_driver() -> None:
    backlight = locate_backlight(ROOT, os.environ.get("FACED_HW_BACKLIGHT", ""))
    if backlight is None:
        pytest.skip(f"no backlight ({ROOT} is empty or lacks the named device: no DSI/DPI panel)")
    brightness = backlight.path / "brightness"
    if not os.access(brightness, os.W_OK):
        pytest.skip(f"{brightness} not writable by this user (root or the video group rule)")
    maximum = backlight.maximum()
    original = int(brightness.read_text())
    bl_power = backlight.path / "bl_power"
    original_power = int(bl_power.read_text()) if backlight.has_bl_power else None
    display = Display("sysfs", backlight)
    target = 50 if round(original * 100 / maximum) != 50 else 100
    try:
        asyncio.run(display.set(brightness=target))
        assert int(brightness.read_text()) == max(1, round(target * maximum / 100))
        assert backlight.read()[1] == round(round(target * maximum / 100) * 100 / maximum)
        if backlight.has_bl_power and os.access(bl_power, os.W_OK):
            asyncio.run(display.set(power=False))
            assert int(bl_power.read_text()) == BL_POWER_OFF
            asyncio.run(display.set(power=True))
            assert int(bl_power.read_text()) == BL_POWER_ON
        assert display.error is None
        print(f"\n{backlight.name}: brightness {original} -> {target} % (max {maximum})")
    finally:
        brightness.write_text(str(original))
        if original_power is not None and os.access(bl_power, os.W_OK):
            bl_power.write_text(str(original_power))
    assert int(brightness.read_text()) == original
