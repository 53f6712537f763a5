"""The display's backlight changes and is restored. Owner: the appliance (issue 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_backlight_changes() -> None:
    devices = sorted(Path("/sys/class/backlight").glob("*"))
    if not devices:
        pytest.skip("no backlight (/sys/class/backlight is empty: no DSI/DPI panel)")
    device = devices[0]
    brightness = device / "brightness"
    if not os.access(brightness, os.W_OK):
        pytest.skip(f"{brightness} not writable by this user (root or the video group rule)")
    maximum = int((device / "max_brightness").read_text())
    original = int(brightness.read_text())
    target = maximum // 2 if original != maximum // 2 else maximum
    try:
        brightness.write_text(str(target))
        assert int(brightness.read_text()) == target
        print(f"\n{device.name}: brightness {original} -> {target} (max {maximum})")
    finally:
        brightness.write_text(str(original))
    assert int(brightness.read_text()) == original
