"""What this box is: host name, OS, board, Python, CPU temperature (GET /api/about).

Owns: reading the host's facts from the file system under an injectable root (the device
tree's model for a Raspberry Pi or a Jetson module, /etc/os-release, the thermal zones), so
tests hand it a temp tree. Does not own: the route (faced.api.system) or the models' facts
(the analyze pool's health summary). Why apart: the host's files are an OS edge; reading them
is blocking and is done in a worker thread.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Where the device tree's model is, newest first (/proc/device-tree links to the second).
_MODEL_FILES: Final = ("proc/device-tree/model", "sys/firmware/devicetree/base/model")
_THERMAL: Final = "sys/class/thermal"
# Thermal zone types that are the CPU (Pi: cpu-thermal; Jetson: CPU-therm, cpu-thermal;
# x86: x86_pkg_temp). The first zone is the fallback: on a Pi it is the SoC's.
_CPU_ZONES: Final = ("cpu", "x86_pkg_temp", "soc")


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    platform: str
    machine: str
    os: str | None
    board: str | None
    python: str
    cpu_temperature_c: float | None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def board_model(root: Path) -> str | None:
    """The device tree's model string (NUL-terminated in the file), or None."""
    for name in _MODEL_FILES:
        text = _read_text(root / name)
        if text is not None:
            model = text.rstrip("\x00\n ").replace("\x00", " ").strip()
            if model:
                return model
    return None


def os_name(root: Path) -> str | None:
    text = _read_text(root / "etc/os-release") or _read_text(root / "usr/lib/os-release")
    if text is None:
        return None
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "PRETTY_NAME":
            return value.strip().strip('"') or None
    return None


def cpu_temperature(root: Path) -> float | None:
    """Degrees Celsius of the CPU's thermal zone (millidegrees in sysfs), or None."""
    base = root / _THERMAL
    try:
        zones = sorted(p for p in base.iterdir() if p.name.startswith("thermal_zone"))
    except OSError:
        return None
    readings: list[tuple[bool, float]] = []
    for zone in zones:
        raw = _read_text(zone / "temp")
        if raw is None:
            continue
        try:
            celsius = int(raw.strip()) / 1000
        except ValueError:
            continue
        kind = (_read_text(zone / "type") or "").strip().lower()
        readings.append((any(word in kind for word in _CPU_ZONES), celsius))
    if not readings:
        return None
    cpu = [celsius for is_cpu, celsius in readings if is_cpu]
    return round(cpu[0] if cpu else readings[0][1], 1)


def host_facts(root: Path = Path("/")) -> HostFacts:
    """The host's facts (blocking: call it in a worker thread)."""
    return HostFacts(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        machine=platform.machine() or os.uname().machine,
        os=os_name(root),
        board=board_model(root),
        python=platform.python_version(),
        cpu_temperature_c=cpu_temperature(root),
    )


__all__ = ["HostFacts", "board_model", "cpu_temperature", "host_facts", "os_name"]
