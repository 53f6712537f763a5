"""The attached HDMI/DSI screen switched off and on by the running service, seen by the kernel.

On the appliance faced.service switches the screen through the kiosk compositor
(display.driver wayland: sway's wlr-output-power-management, DPMS) or the backlight (sysfs).
This asks the running service through its API only (PUT /api/display), and checks what the
kernel says afterwards: each connected DRM connector's ``dpms``
(/sys/class/drm/card*-*/dpms: "Off" once the compositor has turned the CRTC off) — the proof
on real hardware that the emulated tests (tests/devices/test_display_wayland.py, sway's headless
back end) cannot give. Restores power on at the end.

Settings: FACED_HW_URL (default http://127.0.0.1:9999), FACED_HW_KEY (else
/etc/faced/api-key when readable).
"""

from __future__ import annotations

import glob
import time
from pathlib import Path

import pytest
from conftest import call_service, service_key


def _connectors() -> dict[str, Path]:
    """Connected DRM connectors (card1-HDMI-A-1, …) and their dpms files."""
    found = {}
    for status in glob.glob("/sys/class/drm/card*-*/status"):
        directory = Path(status).parent
        if Path(status).read_text().strip() == "connected" and (directory / "dpms").exists():
            found[directory.name] = directory / "dpms"
    return found


def _dpms(connectors: dict[str, Path]) -> dict[str, str]:
    return {name: path.read_text().strip() for name, path in connectors.items()}


def _settled(connectors: dict[str, Path], wanted: str) -> dict[str, str]:
    deadline = time.monotonic() + 5  # a modeset may take a frame or two to land
    while (seen := _dpms(connectors)) and set(seen.values()) != {wanted}:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return seen


def test_the_service_switches_the_screen_off_and_on() -> None:
    key = service_key()
    try:
        status, display = call_service("GET", "/api/display", key)
    except OSError as error:
        pytest.skip(f"faced is not running at FACED_HW_URL ({error})")
    if status in (401, 403):
        pytest.skip("the key is needed: set FACED_HW_KEY (or run as root)")
    assert status == 200, display
    if display["driver"] not in ("wayland", "wlr-randr", "sysfs"):
        pytest.skip(f"display driver {display['driver']}: no screen power control here")
    connectors = _connectors()
    if display["driver"] != "sysfs" and not connectors:
        pytest.skip("no connected DRM connector with a dpms file (no screen plugged in?)")
    try:
        status, body = call_service("PUT", "/api/display", key, {"power": False})
        assert status == 200, body
        assert body["power"] is False and body["error"] is None, body
        if display["driver"] != "sysfs":
            seen = _settled(connectors, "Off")
            assert set(seen.values()) == {"Off"}, f"faced said off, the kernel says {seen}"
        status, body = call_service("PUT", "/api/display", key, {"power": True})
        assert status == 200, body
        assert body["power"] is True, body
        if display["driver"] != "sysfs":
            seen = _settled(connectors, "On")
            assert set(seen.values()) == {"On"}, f"faced said on, the kernel says {seen}"
        print(f"\n{display['driver']}: {', '.join(connectors) or 'backlight'} off and on again")
    finally:
        call_service("PUT", "/api/display", key, {"power": True})
