"""The display port: backlight brightness and panel power, through sysfs or the platform's tools.

Owns a display's brightness and power paths, their detection, and their failures' report.
Does not own when to change them (faced.display_policy) or the Wayland protocol
(faced.devices.wayland).
Why: each panel and compositor switches differently; the policy and the API see one port.

A ``Display`` has a brightness path and a power path:

* ``sysfs`` — a backlight under ``/sys/class/backlight/<name>/`` (official Pi touchscreens,
  DSI/DPI panels, laptops): ``brightness`` scaled to ``max_brightness``; power through
  ``bl_power`` (0 unblank, 4 powerdown — the kernel's FB_BLANK values), or brightness 0
  and back when a device has no ``bl_power``.
* ``wayland`` — power through the Wayland compositor's wlr-output-power-management
  (faced.devices.wayland: DPMS off/on; sway — the appliance's kiosk —, labwc, wayfire); the
  compositor owns DRM master, so this is the DRM/KMS path a process outside it can take.
  Brightness through the backlight when there is one.
* ``wlr-randr`` — power through ``wlr-randr --output NAME --on|--off`` (output management,
  which takes the output out of the layout: for a compositor without power management,
  e.g. cage >= 0.1.5). Brightness through the backlight when there is one.
* ``vcgencmd`` — power through ``vcgencmd display_power 0|1`` (Raspberry Pi firmware
  display stack; KMS builds ignore it). Brightness through the backlight when there is one.
* ``none`` — no display: the state is only kept, so the API and the policy still run.

The compositor's socket is ``display.wayland_display`` (a name under XDG_RUNTIME_DIR or a
path), else the inherited WAYLAND_DISPLAY, else the first ``wayland-N`` this process may
open in the kiosk's runtime directory (``KIOSK_RUNTIME_DIR``, shared with faced's group),
then under ``/run/user/*``; looked up on each call, because the kiosk starts after faced and
may restart. ``open_display(config)`` resolves ``auto`` at startup: a backlight, else
``wayland`` when a socket is reachable or the kiosk's runtime directory exists, else
vcgencmd, else none. File I/O runs in a worker thread and
tools run as asyncio subprocesses with a timeout, so nothing here blocks the event loop.
A failure raises ``DisplayError`` (one line naming the tool or file) and is remembered for
health (``report``) until a later call succeeds; the process carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn, Protocol, TypeVar

from faced.config import DisplayConfig
from faced.devices import wayland
from faced.devices.retry import Health

log = logging.getLogger(__name__)

T = TypeVar("T")

KIOSK_RUNTIME_DIR: Final = "/run/faced-kiosk"
"""The kiosk compositor's runtime directory (faced-kiosk.service, tmpfiles.d): its Wayland
socket is group-accessible there, while /run/user stays hidden from faced (ProtectHome)."""
WAYLAND_SEARCH: Final = (KIOSK_RUNTIME_DIR, "/run/user/*")
BL_POWER_ON: Final = 0  # FB_BLANK_UNBLANK
BL_POWER_OFF: Final = 4  # FB_BLANK_POWERDOWN
_STDERR_QUOTE_CHARS: Final = 200


class DisplayError(Exception):
    """A display operation failed; the message is one line naming the tool or file."""


class Unsupported(DisplayError):
    """The driver cannot do this at all (brightness on a power-only display)."""


# --- sysfs backlight ---------------------------------------------------------------------------


def find_backlight(root: Path, name: str) -> Path | None:
    """The backlight device directory ``root/name`` (the first one when ``name`` is empty);
    None when there is none. Blocking: call from a worker thread."""
    if name:
        path = root / name
        return path if (path / "brightness").is_file() else None
    with contextlib.suppress(OSError):
        for path in sorted(root.iterdir()):
            if (path / "brightness").is_file() and (path / "max_brightness").is_file():
                return path
    return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not an integer"
        raise DisplayError(f"cannot read {path}: {reason}") from None


def _write_int(path: Path, value: int) -> None:
    try:
        path.write_text(f"{value}\n")
    except OSError as exc:
        raise DisplayError(f"cannot write {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Backlight:
    """One sysfs backlight device. Every method blocks: call it from a worker thread."""

    path: Path
    has_bl_power: bool

    @classmethod
    def at(cls, path: Path) -> Backlight:
        return cls(path, (path / "bl_power").is_file())

    @property
    def name(self) -> str:
        return self.path.name

    def maximum(self) -> int:
        maximum = _read_int(self.path / "max_brightness")
        if maximum <= 0:
            raise DisplayError(f"{self.path / 'max_brightness'} is {maximum}: not a usable range")
        return maximum

    def read(self) -> tuple[bool, int]:
        """(power, brightness percent) as the device says now."""
        maximum = self.maximum()
        raw = _read_int(self.path / "brightness")
        power = _read_int(self.path / "bl_power") == BL_POWER_ON if self.has_bl_power else raw > 0
        return power, round(raw * 100 / maximum)

    def write_brightness(self, percent: int) -> None:
        maximum = self.maximum()
        raw = round(percent * maximum / 100)
        if percent > 0:
            raw = max(raw, 1)  # a low percentage must not switch the light off
        _write_int(self.path / "brightness", raw)

    def write_power(self, on: bool, percent: int) -> None:
        """Power through bl_power; without it, brightness 0 for off and ``percent`` for on."""
        if self.has_bl_power:
            _write_int(self.path / "bl_power", BL_POWER_ON if on else BL_POWER_OFF)
        else:
            self.write_brightness(percent if on else 0)


def locate_backlight(root: Path, name: str) -> Backlight | None:
    """The configured backlight, if the kernel has it now. Blocking."""
    path = find_backlight(root, name)
    return Backlight.at(path) if path is not None else None


# --- tools ------------------------------------------------------------------------------------


async def run_tool(argv: list[str], *, limit_s: float, env: Mapping[str, str] | None = None) -> str:
    """Run a tool without blocking the loop; its stdout, or DisplayError (not found, timed
    out, non-zero exit with the last line of its stderr)."""
    command = " ".join(argv)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        raise DisplayError(f"{argv[0]}: not found") from None
    except PermissionError:
        raise DisplayError(f"{argv[0]}: not executable") from None
    try:
        async with asyncio.timeout(limit_s):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise DisplayError(f"{command}: no answer in {limit_s:g} s") from None
    except asyncio.CancelledError:  # shutting down: leave no tool running behind us
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        raise
    if process.returncode != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        said = f": {lines[-1][:_STDERR_QUOTE_CHARS]}" if lines else ""
        raise DisplayError(f"{command} failed (exit {process.returncode}){said}")
    return stdout.decode(errors="replace")


class PowerTool(Protocol):
    name: str

    async def set_power(self, on: bool) -> None: ...


def find_wayland_socket(directories: tuple[str, ...] = WAYLAND_SEARCH) -> str | None:
    """The first wayland-N socket in ``directories`` (glob patterns) this process may connect
    to (a kiosk compositor running as another user shares it by group). Blocking."""
    for directory in directories:
        for path in sorted(glob.glob(f"{directory}/wayland-[0-9]*")):
            if not path.endswith(".lock") and os.access(path, os.R_OK | os.W_OK):
                return path
    return None


def wayland_socket(configured: str) -> str:
    """The compositor socket to use now (see the module docstring); DisplayError when there
    is none. Blocking."""
    display = configured or os.environ.get("WAYLAND_DISPLAY", "")
    if display:
        try:
            return wayland.socket_path(display, os.environ.get("XDG_RUNTIME_DIR"))
        except wayland.WaylandError as exc:
            raise DisplayError(str(exc)) from None
    found = find_wayland_socket()
    if found is None:
        raise DisplayError(
            "no Wayland socket faced may open in "
            f"{' or '.join(WAYLAND_SEARCH)} (is the kiosk running?)"
        )
    return found


class WaylandPower:
    """Output power (DPMS) through the compositor's wlr-output-power-management."""

    def __init__(self, output: str, wayland_display: str, timeout: float) -> None:
        self.output = output
        self.wayland_display = wayland_display
        self.timeout = timeout
        self.name = f"wayland:{output}" if output else "wayland"

    async def set_power(self, on: bool) -> None:
        path = await asyncio.to_thread(wayland_socket, self.wayland_display)
        try:
            await wayland.set_output_power(path, on, self.output, limit_s=self.timeout)
        except wayland.WaylandError as exc:
            raise DisplayError(str(exc)) from None


class WlrRandr:
    """Output power through wlr-randr (wlr-output-management)."""

    def __init__(self, output: str, wayland_display: str, timeout: float) -> None:
        self.output = output
        self.timeout = timeout
        self.wayland_display = wayland_display
        self.name = f"wlr-randr:{output}" if output else "wlr-randr"

    async def _env(self) -> dict[str, str]:
        # A configured or inherited name goes to wlr-randr as it is (libwayland resolves it
        # under XDG_RUNTIME_DIR); otherwise the socket found in the kiosk's directory.
        display = self.wayland_display or os.environ.get("WAYLAND_DISPLAY", "")
        if not display:
            display = await asyncio.to_thread(wayland_socket, "")
        return {**os.environ, "WAYLAND_DISPLAY": display}

    async def outputs(self, env: Mapping[str, str]) -> list[str]:
        """The compositor's outputs: wlr-randr prints each name at the start of a line and
        its properties indented below it."""
        listing = await run_tool(["wlr-randr"], limit_s=self.timeout, env=env)
        names = [line.split()[0] for line in listing.splitlines() if line and not line[0].isspace()]
        if not names:
            raise DisplayError("wlr-randr lists no outputs")
        return names

    async def set_power(self, on: bool) -> None:
        env = await self._env()
        outputs = [self.output] if self.output else await self.outputs(env)
        for output in outputs:
            await run_tool(
                ["wlr-randr", "--output", output, "--on" if on else "--off"],
                limit_s=self.timeout,
                env=env,
            )


class Vcgencmd:
    """Display power through the Raspberry Pi firmware (vcgencmd display_power)."""

    name = "vcgencmd"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    async def set_power(self, on: bool) -> None:
        said = await run_tool(
            ["vcgencmd", "display_power", "1" if on else "0"], limit_s=self.timeout
        )
        # It answers display_power=N with the state it reached.
        if said.strip() != f"display_power={int(on)}":
            raise DisplayError(f"vcgencmd display_power {int(on)} answered {said.strip()!r}")


# --- the display ------------------------------------------------------------------------------


class Display:
    """One display: brightness through ``backlight`` (if any), power through ``tool`` if
    given, else through the backlight, else (driver none) only remembered."""

    def __init__(
        self,
        driver: str,
        backlight: Backlight | None = None,
        tool: PowerTool | None = None,
        *,
        awaited: tuple[Path, str] | None = None,
    ) -> None:
        self.driver = driver
        self.backlight = backlight
        self.tool = tool
        self._awaited = awaited
        """sysfs without its device yet (a panel probed late): (root, name) looked in again
        on use."""
        self.power: bool | None = None
        """Last known power state (None until read or set)."""
        self.brightness: int | None = None
        """Last known brightness percent (None: unknown, or no brightness control)."""
        self.health = Health()
        self.failures = 0
        self._lock = asyncio.Lock()  # the API and the policy take turns
        if driver == "none":
            self.power, self.brightness = True, 100

    @property
    def error(self) -> str | None:
        """The last failure, until an operation succeeds."""
        return self.health.error

    @property
    def has_brightness(self) -> bool:
        return self.backlight is not None or self._awaited is not None or self.driver == "none"

    @property
    def power_via(self) -> str | None:
        if self.tool is not None:
            return self.tool.name
        if self.backlight is not None:
            return "bl_power" if self.backlight.has_bl_power else "brightness"
        return None

    async def refresh(self) -> None:
        """Read the backlight's current state (startup)."""
        async with self._lock:
            backlight = await self._backlight()
            if backlight is None:
                return
            power, brightness = await self._attempt(asyncio.to_thread(backlight.read))
            self.brightness = brightness
            if self.tool is None:
                self.power = power

    async def set(self, *, power: bool | None = None, brightness: int | None = None) -> None:
        """Change what is given; DisplayError when the device or tool fails (what succeeded
        before the failure stays applied), Unsupported when there is no brightness control."""
        self.check(brightness=brightness)
        async with self._lock:
            # Brightness before power-on, so the panel does not flash at the old level.
            if brightness is not None:
                await self._set_brightness(brightness)
            if power is not None:
                await self._set_power(power)

    def check(self, *, brightness: int | None) -> None:
        """Unsupported when this display cannot do what is asked."""
        if brightness is not None and not self.has_brightness:
            raise Unsupported(
                f"display driver {self.driver} has no brightness control (no backlight found)"
            )

    async def _backlight(self) -> Backlight | None:
        if self.backlight is None and self._awaited is not None:
            root, name = self._awaited
            found = await asyncio.to_thread(locate_backlight, root, name)
            if found is None:
                self._failed(DisplayError(f"no backlight device at {root / (name or '*')}"))
            self.backlight, self._awaited = found, None
            log.info("display: backlight %s found", found.name)
        return self.backlight

    async def _set_brightness(self, percent: int) -> None:
        backlight = await self._backlight()
        # Without bl_power (and without a tool) an off panel is brightness 0: the new level
        # is remembered and applied at power-on.
        powered_by_brightness = self.tool is None and not (backlight and backlight.has_bl_power)
        if backlight is not None and not (powered_by_brightness and self.power is False):
            await self._attempt(asyncio.to_thread(backlight.write_brightness, percent))
        self.brightness = percent

    async def _set_power(self, on: bool) -> None:
        if self.tool is not None:
            await self._attempt(self.tool.set_power(on))
        else:
            backlight = await self._backlight()
            if backlight is not None:
                level = self.brightness if self.brightness is not None else 100
                await self._attempt(asyncio.to_thread(backlight.write_power, on, level))
        self.power = on

    async def _attempt(self, operation: Awaitable[T]) -> T:
        try:
            result = await operation
        except DisplayError as exc:
            self._failed(exc)
        if self.health.working():
            log.info("display: working again", extra={"driver": self.driver})
        return result

    def _failed(self, exc: DisplayError) -> NoReturn:
        self.failures += 1
        if self.health.failed(str(exc)):
            log.warning("display: %s", exc)  # once per distinct problem, not per retry
        raise exc

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "status": "error" if self.error else "ok",
            "driver": self.driver,
            "backlight": self.backlight.name if self.backlight is not None else None,
            "power_via": self.power_via,
            "power": self.power,
            "brightness": self.brightness,
            "failures": self.failures,
        }
        if self.error:
            report["error"] = self.error
        return report


def _detect(config: DisplayConfig) -> tuple[str, Backlight | None]:
    """(driver, backlight) for ``config``, auto resolved. Blocking."""
    backlight = locate_backlight(Path(config.backlight_dir), config.backlight)
    driver = config.driver
    if driver == "auto":
        if backlight is not None:
            driver = "sysfs"
        elif (
            config.wayland_display
            or os.environ.get("WAYLAND_DISPLAY")
            or find_wayland_socket()
            or os.path.isdir(KIOSK_RUNTIME_DIR)  # the kiosk starts after faced
        ):
            driver = "wayland"
        elif shutil.which("vcgencmd"):
            driver = "vcgencmd"
        else:
            driver = "none"
    return driver, backlight


async def open_display(config: DisplayConfig) -> Display:
    """The display ``config`` describes. A missing device or tool is not fatal: the display
    reports the problem in health and each later operation tries again."""
    driver, backlight = await asyncio.to_thread(_detect, config)
    tool: PowerTool | None = None
    if driver == "wayland":
        tool = WaylandPower(config.output, config.wayland_display, config.tool_timeout_s)
    elif driver == "wlr-randr":
        tool = WlrRandr(config.output, config.wayland_display, config.tool_timeout_s)
    elif driver == "vcgencmd":
        tool = Vcgencmd(config.tool_timeout_s)
    awaited = None
    if driver == "sysfs" and backlight is None:
        awaited = (Path(config.backlight_dir), config.backlight)
    display = Display(driver, backlight if driver != "none" else None, tool, awaited=awaited)
    with contextlib.suppress(DisplayError):
        await display.refresh()  # a missing backlight is reported (health) from here on
    log.info(
        "display driver %s",
        driver,
        extra={"requested": config.driver, "backlight": display.report()["backlight"]},
    )
    return display


__all__ = [
    "Backlight",
    "Display",
    "DisplayError",
    "Unsupported",
    "Vcgencmd",
    "WaylandPower",
    "WlrRandr",
    "find_backlight",
    "find_wayland_socket",
    "locate_backlight",
    "open_display",
    "run_tool",
    "wayland_socket",
]
