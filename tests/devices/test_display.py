"""The display through the real daemon: GET/PUT /api/display, the drivers, health.

Fakes only at the OS boundary: a temporary sysfs-like backlight
tree (brightness, max_brightness, bl_power), and `wlr-randr` / `vcgencmd` executables on
PATH that record their arguments and answer as the real tools do (or fail, or hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.config import ConfigError, validate

KEY = "display-key"
MAX_RAW = 255


def make_backlight(root: Path, name: str = "panel", *, bl_power: bool = True) -> Path:
    device = root / name
    device.mkdir(parents=True)
    (device / "max_brightness").write_text(f"{MAX_RAW}\n")
    (device / "brightness").write_text(f"{MAX_RAW}\n")
    if bl_power:
        (device / "bl_power").write_text("0\n")
    return device


@pytest.fixture
def backlight(tmp_path: Path) -> Path:
    return make_backlight(tmp_path / "backlight")


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH for fake platform tools."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def write_tool(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


WLR_RANDR = """\
echo "WAYLAND_DISPLAY=$WAYLAND_DISPLAY $*" >> "{log}"
if [ $# -eq 0 ]; then
  printf 'HDMI-A-1 "Acme Monitor (HDMI-A-1)"\\n  Enabled: yes\\n  Modes:\\n    1920x1080 px\\n'
  printf 'DSI-1 "Panel (DSI-1)"\\n  Enabled: yes\\n'
fi
"""


async def read(path: Path) -> str:
    return (await asyncio.to_thread(path.read_text)).strip()


def sysfs(root: Path, **display: Any) -> dict[str, Any]:
    return {"driver": "sysfs", "backlight_dir": str(root), "policy": False, **display}


# --- sysfs ------------------------------------------------------------------------------------


async def test_put_changes_the_backlight(faced_client, backlight: Path) -> None:
    client = await faced_client(display=sysfs(backlight.parent))
    status = await (await client.get("/api/display")).json()
    assert status == {
        "driver": "sysfs",
        "power": True,
        "brightness": 100,
        "brightness_control": True,
        "policy": None,
        "manual": False,
        "error": None,
    }

    response = await client.put("/api/display", json={"brightness": 40})
    assert response.status == 200
    assert (await response.json())["brightness"] == 40
    assert await read(backlight / "brightness") == str(round(0.4 * MAX_RAW))

    response = await client.put("/api/display", json={"power": False})
    assert response.status == 200 and (await response.json())["power"] is False
    assert await read(backlight / "bl_power") == "4"
    assert await read(backlight / "brightness") == str(round(0.4 * MAX_RAW))

    response = await client.put("/api/display", json={"power": True, "brightness": 1})
    assert response.status == 200
    assert await read(backlight / "bl_power") == "0"
    assert await read(backlight / "brightness") == "3"  # 1 % of 255, rounded
    status = await (await client.get("/api/display")).json()
    assert (status["power"], status["brightness"]) == (True, 1)


async def test_startup_reads_the_backlight(faced_client, backlight: Path) -> None:
    await asyncio.to_thread((backlight / "brightness").write_text, "51\n")
    await asyncio.to_thread((backlight / "bl_power").write_text, "4\n")
    client = await faced_client(display=sysfs(backlight.parent))
    status = await (await client.get("/api/display")).json()
    assert (status["power"], status["brightness"]) == (False, 20)


async def test_a_small_brightness_keeps_the_light_on(faced_client, tmp_path: Path) -> None:
    device = await asyncio.to_thread(make_backlight, tmp_path / "bl", "tiny")
    await asyncio.to_thread((device / "max_brightness").write_text, "7\n")
    client = await faced_client(display=sysfs(device.parent))
    assert (await client.put("/api/display", json={"brightness": 2})).status == 200
    assert await read(device / "brightness") == "1"
    assert (await client.put("/api/display", json={"brightness": 0})).status == 200
    assert await read(device / "brightness") == "0"


async def test_without_bl_power_off_is_brightness_zero(faced_client, tmp_path: Path) -> None:
    device = await asyncio.to_thread(make_backlight, tmp_path / "bl", "dsi", bl_power=False)
    client = await faced_client(display=sysfs(device.parent))
    assert (await client.put("/api/display", json={"brightness": 60})).status == 200
    assert (await client.put("/api/display", json={"power": False})).status == 200
    assert await read(device / "brightness") == "0"
    # A brightness set while off waits for power-on instead of lighting the panel.
    assert (await client.put("/api/display", json={"brightness": 80})).status == 200
    assert await read(device / "brightness") == "0"
    assert (await client.put("/api/display", json={"power": True})).status == 200
    assert await read(device / "brightness") == str(round(0.8 * MAX_RAW))
    health = await (await client.get("/health")).json()
    assert health["components"]["display"]["power_via"] == "brightness"


async def test_named_backlight_is_used(faced_client, tmp_path: Path) -> None:
    root = tmp_path / "bl"
    first = await asyncio.to_thread(make_backlight, root, "a-first")
    second = await asyncio.to_thread(make_backlight, root, "b-second")
    client = await faced_client(display=sysfs(root, backlight="b-second"))
    assert (await client.put("/api/display", json={"brightness": 0})).status == 200
    assert await read(second / "brightness") == "0"
    assert await read(first / "brightness") == str(MAX_RAW)


# --- bad input and access --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"brightness": 101}, "brightness", "from 0 to 100"),
        ({"brightness": -1}, "brightness", "from 0 to 100"),
        ({"brightness": 50.5}, "brightness", "whole number"),
        ({"brightness": "50"}, "brightness", "whole number"),
        ({"power": "on"}, "power", "true or false"),
        ({"power": 1}, "power", "true or false"),
        ({"power": True, "volume": 3}, "volume", "allowed: power, brightness"),
        ({}, None, "nothing to change"),
        ([True], None, "must be an object"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    faced_client, backlight: Path, body: Any, field: str | None, words: str
) -> None:
    client = await faced_client(display=sysfs(backlight.parent))
    response = await client.put("/api/display", json=body)
    assert response.status == 400
    answer = await response.json()
    assert words in answer["error"]
    assert answer.get("field") == field
    if field:
        assert f"'{field}'" in answer["error"]
    assert await read(backlight / "brightness") == str(MAX_RAW)  # nothing changed


async def test_not_json_is_400(faced_client, backlight: Path) -> None:
    client = await faced_client(display=sysfs(backlight.parent))
    response = await client.put(
        "/api/display", data=b"{power", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]


async def test_display_needs_the_key_when_one_is_set(faced_client, backlight: Path) -> None:
    client = await faced_client(display=sysfs(backlight.parent), auth={"api_key": KEY})
    assert (await client.get("/api/display")).status == 401
    assert (await client.put("/api/display", json={"power": False})).status == 401
    assert await read(backlight / "bl_power") == "0"
    headers = {"Authorization": f"Bearer {KEY}"}
    assert (await client.get("/api/display", headers=headers)).status == 200
    response = await client.put("/api/display", json={"power": False}, headers=headers)
    assert response.status == 200
    assert await read(backlight / "bl_power") == "4"


# --- tools ------------------------------------------------------------------------------------


async def test_wlr_randr_switches_every_output(faced_client, tools: Path, tmp_path: Path) -> None:
    log = tmp_path / "wlr-randr.log"
    await asyncio.to_thread(write_tool, tools, "wlr-randr", WLR_RANDR.format(log=log))
    client = await faced_client(
        display={
            "driver": "wlr-randr",
            "wayland_display": "wayland-7",
            "backlight_dir": str(tmp_path / "none"),
            "policy": False,
        }
    )
    response = await client.put("/api/display", json={"power": False})
    assert response.status == 200
    calls = (await read(log)).splitlines()
    assert calls == [
        "WAYLAND_DISPLAY=wayland-7 ",
        "WAYLAND_DISPLAY=wayland-7 --output HDMI-A-1 --off",
        "WAYLAND_DISPLAY=wayland-7 --output DSI-1 --off",
    ]
    status = await (await client.get("/api/display")).json()
    assert status["driver"] == "wlr-randr" and status["power"] is False
    assert status["brightness_control"] is False

    # No backlight: brightness is refused, naming the field.
    response = await client.put("/api/display", json={"brightness": 30})
    assert response.status == 409
    answer = await response.json()
    assert answer["field"] == "brightness" and "no brightness control" in answer["error"]


async def test_wlr_randr_named_output_with_a_backlight(
    faced_client, tools: Path, tmp_path: Path, backlight: Path
) -> None:
    log = tmp_path / "wlr-randr.log"
    await asyncio.to_thread(write_tool, tools, "wlr-randr", WLR_RANDR.format(log=log))
    client = await faced_client(
        display={
            "driver": "wlr-randr",
            "output": "HDMI-A-1",
            "wayland_display": "/run/kiosk/wayland-0",
            "backlight_dir": str(backlight.parent),
            "policy": False,
        }
    )
    response = await client.put("/api/display", json={"power": True, "brightness": 50})
    assert response.status == 200
    assert (await read(log)).splitlines() == [
        "WAYLAND_DISPLAY=/run/kiosk/wayland-0 --output HDMI-A-1 --on"
    ]
    assert await read(backlight / "brightness") == str(round(0.5 * MAX_RAW))
    assert await read(backlight / "bl_power") == "0"  # power is the tool's, not bl_power
    health = await (await client.get("/health")).json()
    entry = health["components"]["display"]
    assert (entry["driver"], entry["backlight"]) == ("wlr-randr", "panel")
    assert entry["power_via"] == "wlr-randr:HDMI-A-1"


async def test_vcgencmd_display_power(faced_client, tools: Path, tmp_path: Path) -> None:
    log = tmp_path / "vcgencmd.log"
    await asyncio.to_thread(
        write_tool, tools, "vcgencmd", f'echo "$*" >> "{log}"\necho "display_power=$2"\n'
    )
    client = await faced_client(
        display={"driver": "vcgencmd", "backlight_dir": str(tmp_path / "none"), "policy": False}
    )
    assert (await client.put("/api/display", json={"power": False})).status == 200
    assert (await client.put("/api/display", json={"power": True})).status == 200
    assert (await read(log)).splitlines() == ["display_power 0", "display_power 1"]
    assert (await (await client.get("/api/display")).json())["power"] is True


async def test_a_failing_tool_shows_in_health_and_the_api_keeps_working(
    faced_client, tools: Path, tmp_path: Path, backlight: Path
) -> None:
    tool = await asyncio.to_thread(
        write_tool, tools, "wlr-randr", 'echo "failed to connect to display" >&2\nexit 1\n'
    )
    client = await faced_client(
        display={
            "driver": "wlr-randr",
            "output": "HDMI-A-1",
            "wayland_display": "wayland-0",
            "backlight_dir": str(backlight.parent),
            "policy": False,
        }
    )
    response = await client.put("/api/display", json={"power": False})
    assert response.status == 503
    error = (await response.json())["error"]
    assert "wlr-randr --output HDMI-A-1 --off failed (exit 1)" in error
    assert "failed to connect to display" in error

    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded"
    entry = health["components"]["display"]
    assert entry["status"] == "error" and "wlr-randr" in entry["error"]
    assert entry["failures"] == 1

    # The rest keeps working: reading, brightness through the backlight, the face.
    status = await (await client.get("/api/display")).json()
    assert "failed to connect" in status["error"]
    assert (await client.put("/api/display", json={"brightness": 30})).status == 200
    assert await read(backlight / "brightness") == str(round(0.3 * MAX_RAW))
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200

    # The tool comes back: the next change works and health is ok again.
    await asyncio.to_thread(tool.write_text, "#!/bin/sh\nexit 0\n")
    assert (await client.put("/api/display", json={"power": False})).status == 200
    health = await (await client.get("/health")).json()
    assert health["components"]["display"]["status"] == "ok"
    assert "error" not in health["components"]["display"]


async def test_a_hanging_tool_times_out(faced_client, tools: Path, tmp_path: Path) -> None:
    await asyncio.to_thread(write_tool, tools, "vcgencmd", "exec sleep 30\n")
    client = await faced_client(
        display={
            "driver": "vcgencmd",
            "tool_timeout_s": 0.3,
            "backlight_dir": str(tmp_path / "none"),
            "policy": False,
        }
    )
    response = await client.put("/api/display", json={"power": False})
    assert response.status == 503
    assert "vcgencmd display_power 0: no answer in 0.3 s" in (await response.json())["error"]
    assert (await client.get("/health")).status == 200


async def test_a_missing_tool_is_reported(
    faced_client, tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await faced_client(
        display={"driver": "vcgencmd", "backlight_dir": str(tmp_path / "none"), "policy": False}
    )
    monkeypatch.setenv("PATH", str(tools))  # nothing there
    response = await client.put("/api/display", json={"power": True})
    assert response.status == 503
    assert "vcgencmd: not found" in (await response.json())["error"]


async def test_sysfs_without_a_device_reports_and_finds_it_later(
    faced_client, tmp_path: Path
) -> None:
    root = tmp_path / "late"
    await asyncio.to_thread(root.mkdir)
    client = await faced_client(display=sysfs(root))
    health = await (await client.get("/health")).json()
    entry = health["components"]["display"]
    assert entry["status"] == "error" and "no backlight device" in entry["error"]
    response = await client.put("/api/display", json={"brightness": 50})
    assert response.status == 503 and "no backlight device" in (await response.json())["error"]

    device = await asyncio.to_thread(make_backlight, root)  # the panel's driver loaded
    assert (await client.put("/api/display", json={"brightness": 50})).status == 200
    assert await read(device / "brightness") == str(round(0.5 * MAX_RAW))
    health = await (await client.get("/health")).json()
    assert health["components"]["display"]["status"] == "ok"


# --- auto, none -------------------------------------------------------------------------------


async def test_auto_prefers_the_backlight(faced_client, backlight: Path, tools: Path) -> None:
    await asyncio.to_thread(write_tool, tools, "vcgencmd", "exit 0\n")
    client = await faced_client(
        display={"driver": "auto", "backlight_dir": str(backlight.parent), "policy": False}
    )
    assert (await (await client.get("/api/display")).json())["driver"] == "sysfs"


async def test_auto_takes_vcgencmd_without_backlight_or_wayland(
    faced_client, tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    await asyncio.to_thread(write_tool, tools, "vcgencmd", 'echo "display_power=$2"\n')
    await asyncio.to_thread(
        write_tool, tools, "wlr-randr", "exit 0\n"
    )  # installed, but no compositor to talk to
    monkeypatch.setenv("PATH", str(tools))
    client = await faced_client(
        display={"driver": "auto", "backlight_dir": str(tmp_path / "none"), "policy": False}
    )
    assert (await (await client.get("/api/display")).json())["driver"] == "vcgencmd"


async def test_auto_takes_wayland_under_wayland(
    faced_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An inherited WAYLAND_DISPLAY makes auto the compositor's own power control (against a
    real compositor: tests/devices/test_display_wayland.py); with no compositor behind it, a PUT
    names the socket it could not open."""
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-3")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    client = await faced_client(
        display={"driver": "auto", "backlight_dir": str(tmp_path / "none"), "policy": False}
    )
    assert (await (await client.get("/api/display")).json())["driver"] == "wayland"
    response = await client.put("/api/display", json={"power": True})
    assert response.status == 503
    assert (await response.json())["error"] == (
        f"the display did not change: cannot connect to {tmp_path / 'wayland-3'}: "
        "No such file or directory"
    )


async def test_auto_without_anything_is_none(
    faced_client, tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tools))  # no tools at all
    client = await faced_client(
        display={"driver": "auto", "backlight_dir": str(tmp_path / "none"), "policy": False}
    )
    status = await (await client.get("/api/display")).json()
    assert status["driver"] == "none"
    response = await client.put("/api/display", json={"power": False, "brightness": 10})
    assert response.status == 200
    status = await response.json()
    assert (status["power"], status["brightness"]) == (False, 10)
    health = await (await client.get("/health")).json()
    assert health["components"]["display"]["status"] == "ok"


# --- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("display", "words"),
    [
        ({"driver": "hdmi"}, "display.driver = 'hdmi': expected one of"),
        ({"brightness": 120}, "display.brightness = 120"),
        ({"night": "23:00"}, "display.night = '23:00': expected HH:MM-HH:MM"),
        ({"night": "24:00-07:00"}, "display.night = '24:00-07:00'"),
        ({"night": "07:00-07:00"}, "different start and end"),
        (
            {"idle_dim_after_s": 60, "idle_off_after_s": 30},
            "display.idle_off_after_s = 30.0: expected more than display.idle_dim_after_s",
        ),
        ({"tool_timeout_s": 0}, "display.tool_timeout_s = 0"),
    ],
)
def test_bad_display_config_is_one_line(display: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate({"display": display})
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_serve_refuses_a_bad_display_driver_with_78(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "faced", "serve", "--port", "65000", "--display", "hdmi"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )
    assert result.returncode == 78
    assert result.stderr.strip().splitlines() == [
        "faced serve: config: display.driver = 'hdmi': expected one of auto, none, sysfs, "
        "vcgencmd, wayland, wlr-randr"
    ]


# --- the real process -------------------------------------------------------------------------


async def test_faced_serve_drives_the_display_and_stops_cleanly(
    run_faced, backlight: Path, tools: Path, tmp_path: Path
) -> None:
    """`faced serve` with a [display] section; SIGTERM while a power tool hangs still exits 0
    in time, and leaves no tool running."""
    pid_file = tmp_path / "tool.pid"
    await asyncio.to_thread(
        write_tool, tools, "wlr-randr", f'echo $$ > "{pid_file}"\nexec sleep 60\n'
    )
    faced = await run_faced(
        "--display",
        "wlr-randr",
        env={"PATH": os.environ["PATH"]},
        config_text=(
            "[display]\n"
            f'backlight_dir = "{backlight.parent}"\n'
            'output = "HDMI-A-1"\n'
            'wayland_display = "wayland-0"\n'
            "tool_timeout_s = 30\n"
            "policy = false\n"
        ),
    )
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{faced.url}/api/display", json={"brightness": 25}) as response:
            assert response.status == 200
        assert await read(backlight / "brightness") == str(round(0.25 * MAX_RAW))
        # A power change whose tool hangs: the request waits, the daemon stops anyway.
        pending = asyncio.ensure_future(
            session.put(f"{faced.url}/api/display", json={"power": False})
        )

        async def tool_started() -> bool:
            return await asyncio.to_thread(pid_file.exists)

        deadline = time.monotonic() + 20
        while not await tool_started():
            assert time.monotonic() < deadline, "the tool never ran"
            await asyncio.sleep(0.05)
        tool_pid = int(await read(pid_file))
        faced.terminate()
        assert await faced.wait_exit(10) == 0
        with contextlib.suppress(aiohttp.ClientError):
            (await pending).release()
    assert not await asyncio.to_thread(_running, tool_pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running; its parent (faced) is gone, so init reaps it.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True
