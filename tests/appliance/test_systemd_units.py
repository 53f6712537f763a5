"""The systemd units under systemd/: valid for systemd itself, and saying what we rely on.

`systemd-analyze verify` (Debian's `systemd` package; PID 1
need not be systemd) loads each unit as the service manager would and must print nothing.
It also checks that ExecStart's program exists and is executable, so each unit is verified
as a temporary copy whose ExecStart points at this checkout's real program where the
installed path (/opt/faced/venv, /usr/lib/faced) does not exist on the test machine. The
kiosk's command line, sway config and browser script are asserted below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from faced.config import ServerConfig
from faced.devices.display import KIOSK_RUNTIME_DIR

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
SERVICES = ("faced.service", "faced-kiosk.service", "faced-firstboot.service")
FACED = Path(sys.executable).parent / "faced"
FIRSTBOOT = REPO / "image-build" / "recipe" / "firstboot.sh"

# Installed path -> the program this checkout has in its place.
STAND_INS = {
    "/opt/faced/venv/bin/faced": str(FACED),
    "/usr/lib/faced/firstboot": str(FIRSTBOOT),
}
KIOSK = REPO / "image-build" / "recipe" / "kiosk"

Unit = dict[str, dict[str, list[str]]]

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze missing: install Debian's `systemd` package (.ci/debian-packages.txt)",
)


def parse_unit(path: Path) -> Unit:
    """Sections -> key -> every value in order (systemd keys may repeat, e.g. DeviceAllow)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        sections[section][key.strip()].append(value.strip())
    return sections


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key}: expected one value, got {values}"
    return values[0]


@pytest.fixture(scope="module")
def faced_unit() -> Unit:
    return parse_unit(UNITS / "faced.service")


@needs_systemd_analyze
@pytest.mark.parametrize("name", SERVICES)
def test_systemd_analyze_verify_is_clean(name: str, tmp_path: Path) -> None:
    assert FACED.exists(), f"{FACED}: the venv's faced entry point is missing"
    for service in SERVICES:  # referenced units (Requires=faced.service) resolve from here
        text = (UNITS / service).read_text()
        for installed, stand_in in STAND_INS.items():
            text = text.replace(f"ExecStart={installed}", f"ExecStart={stand_in}")
        (tmp_path / service).write_text(text)
    completed = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    # verify exits 0 on unknown keys and unparsable values (it only warns): both must be empty.
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == "", completed.stderr
    assert completed.stdout == "", completed.stdout


@needs_systemd_analyze
def test_verify_catches_a_bad_directive(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is reported on stderr."""
    text = (
        (UNITS / "faced.service")
        .read_text()
        .replace("ExecStart=/opt/faced/venv/bin/faced", f"ExecStart={FACED}")
    )
    (tmp_path / "faced.service").write_text(text.replace("Restart=on-failure", "Restart=sometimes"))
    completed = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(tmp_path / "faced.service")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "restart specifier" in completed.stderr


def test_faced_service_is_notify_with_watchdog_and_restart(faced_unit: Unit) -> None:
    assert one(faced_unit, "Service", "Type") == "notify"
    assert one(faced_unit, "Service", "NotifyAccess") == "main"
    assert int(one(faced_unit, "Service", "WatchdogSec")) > 0
    assert one(faced_unit, "Service", "Restart") == "on-failure"
    assert one(faced_unit, "Service", "ExecStart").split()[:2] == [
        "/opt/faced/venv/bin/faced",
        "serve",
    ]
    assert one(faced_unit, "Install", "WantedBy") == "multi-user.target"


def test_faced_service_file_limit_fits_the_connection_caps(faced_unit: Unit) -> None:
    """LimitNOFILE's arithmetic (its comment in the unit): the capped connections, the box's
    own, one accept turn of refused ones and the process itself, at least doubled."""
    capped = ServerConfig().max_connections
    assert int(one(faced_unit, "Service", "LimitNOFILE")) >= 2 * (capped + 64 + 129 + 64)


def test_faced_service_runs_as_its_own_user_with_device_groups(faced_unit: Unit) -> None:
    assert one(faced_unit, "Service", "User") == "faced"
    groups = set(one(faced_unit, "Service", "SupplementaryGroups").split())
    assert {"video", "audio", "render", "input", "gpio"} <= groups
    sysusers = (UNITS / "sysusers.d" / "faced.conf").read_text().splitlines()
    assert any(line.split()[:2] == ["u", "faced"] for line in sysusers)
    members = {line.split()[2] for line in sysusers if line.split()[:2] == ["m", "faced"]}
    assert groups <= members, "every supplementary group is created/joined by sysusers.d"


def test_faced_service_directories_and_credential(faced_unit: Unit) -> None:
    assert one(faced_unit, "Service", "StateDirectory") == "faced"
    assert one(faced_unit, "Service", "ConfigurationDirectory") == "faced"
    assert one(faced_unit, "Service", "CacheDirectory") == "faced"
    assert one(faced_unit, "Service", "LoadCredential") == "api-key:/etc/faced/api-key"
    environment = " ".join(faced_unit["Service"]["Environment"])
    assert "FACE_API_KEY" not in environment, "the key travels as a credential only"


def test_faced_service_hardening(faced_unit: Unit) -> None:
    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "RestrictRealtime": "yes",
        "RestrictNamespaces": "yes",
        "MemoryDenyWriteExecute": "yes",
        "CapabilityBoundingSet": "",
        "PrivateDevices": "no",  # cameras, DRM, ALSA: allowed one by one below
        "DevicePolicy": "closed",
    }
    for key, value in expected.items():
        assert one(faced_unit, "Service", key) == value, key
    families = set(one(faced_unit, "Service", "RestrictAddressFamilies").split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert "@system-service" in faced_unit["Service"]["SystemCallFilter"]


def test_faced_service_allows_the_devices_it_needs(faced_unit: Unit) -> None:
    allowed = {value.split()[0] for value in faced_unit["Service"]["DeviceAllow"]}
    # /dev/video*, /dev/media*, /dev/dma_heap/*, /dev/snd/*, /dev/dri/*, /dev/vchiq
    for device_class in ("video4linux", "media", "dma_heap", "alsa", "drm", "vchiq"):
        assert f"char-{device_class}" in allowed, device_class


def test_kiosk_follows_faced_and_restarts() -> None:
    kiosk = parse_unit(UNITS / "faced-kiosk.service")
    assert "faced.service" in one(kiosk, "Unit", "Requires").split()
    assert "faced.service" in " ".join(kiosk["Unit"]["After"]).split()
    assert one(kiosk, "Service", "Restart") == "always"
    command = one(kiosk, "Service", "ExecStart").split()
    assert command == [
        "/usr/bin/env",
        "XDG_RUNTIME_DIR=/run/faced-kiosk",
        "/usr/bin/sway",
        "--config",
        "/usr/lib/faced/kiosk/sway.conf",
    ]
    # sway starts the browser; the browser's end ends sway, so Restart=always covers both.
    assert "\nexec /usr/lib/faced/kiosk/browser\n" in (KIOSK / "sway.conf").read_text()
    browser = (KIOSK / "browser.sh").read_text()
    chromium = browser[browser.index("chromium --kiosk") :].split("\n\n")[0]
    assert "'http://127.0.0.1:9999/?audio=off'\n" in chromium
    assert browser.rstrip().endswith("exec swaymsg exit")
    step = (REPO / "image-build" / "recipe" / "steps" / "40-units.sh").read_text()
    assert '"$RECIPE_DIR/kiosk/sway.conf" /usr/lib/faced/kiosk/sway.conf' in step
    assert '"$RECIPE_DIR/kiosk/browser.sh" /usr/lib/faced/kiosk/browser' in step
    pam = (UNITS / "pam.d" / "faced-kiosk").read_text()
    assert "pam_systemd.so" in pam, "sway needs a logind seat session"


def test_faced_reaches_the_kiosk_compositor_and_nothing_more(faced_unit: Unit) -> None:
    """The compositor's socket is where faced (ProtectHome=yes: no /run/user) can open it:
    the kiosk's runtime directory, shared through the kiosk's group, which faced joins;
    the directory faced's display driver looks in (display.driver auto) is that one."""
    kiosk = parse_unit(UNITS / "faced-kiosk.service")
    assert one(kiosk, "Service", "RuntimeDirectory") == "faced-kiosk"
    assert one(kiosk, "Service", "RuntimeDirectoryMode") == "0750"
    assert one(kiosk, "Service", "UMask") == "0077", "only the chmod'ed socket is shared"
    assert one(kiosk, "Service", "Group") == "faced-kiosk"
    assert f"XDG_RUNTIME_DIR={KIOSK_RUNTIME_DIR}" in one(kiosk, "Service", "ExecStart").split()
    assert KIOSK_RUNTIME_DIR == "/run/faced-kiosk"
    assert 'exec chmod 0660 "$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY"' in (
        (KIOSK / "sway.conf").read_text().splitlines()
    )
    assert "faced-kiosk" in one(faced_unit, "Service", "SupplementaryGroups").split()
    assert one(faced_unit, "Service", "ProtectHome") == "yes"
    tmpfiles = (UNITS / "tmpfiles.d" / "faced-kiosk.conf").read_text().splitlines()
    assert f"d {KIOSK_RUNTIME_DIR} 0750 faced-kiosk faced-kiosk -" in tmpfiles


def test_firstboot_runs_before_faced() -> None:
    firstboot = parse_unit(UNITS / "faced-firstboot.service")
    assert "faced.service" in one(firstboot, "Unit", "Before").split()
    assert one(firstboot, "Service", "Type") == "oneshot"
    faced = parse_unit(UNITS / "faced.service")
    assert "faced-firstboot.service" in one(faced, "Unit", "After").split()


def test_tmpfiles_keep_the_api_key_root_only() -> None:
    lines = (UNITS / "tmpfiles.d" / "faced.conf").read_text().splitlines()
    entries = [line.split() for line in lines if line and not line.startswith("#")]
    assert ["z", "/etc/faced/api-key", "0600", "root", "root", "-"] in entries


def _bytes(value: str) -> int:
    """A systemd size (``320M``, ``1G``, plain bytes) in bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    suffix = value[-1].upper()
    return int(value[:-1]) * units[suffix] if suffix in units else int(value)


def test_faced_service_bounds_memory_and_tasks(faced_unit: Unit) -> None:
    # The figures behind them are `faced bench soak`'s (the unit's comment says which):
    # MemoryHigh (reclaim, throttle) must sit below MemoryMax (OOM kill, restart), both with
    # room above the soak's steady 160-215 MiB; TasksMax well above the soak's 9-10 threads.
    high = _bytes(one(faced_unit, "Service", "MemoryHigh"))
    ceiling = _bytes(one(faced_unit, "Service", "MemoryMax"))
    assert 256 << 20 <= high < ceiling <= 1 << 30, (high, ceiling)
    tasks = int(one(faced_unit, "Service", "TasksMax"))
    assert 32 <= tasks <= 512, tasks
    assert "MALLOC_ARENA_MAX=2" in " ".join(faced_unit["Service"]["Environment"])
