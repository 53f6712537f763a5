"""faced's display driver against a real Wayland compositor: sway, with the kiosk's own config.

sway (Debian's package, the appliance's kiosk compositor) runs on
its headless back end (no GPU, no seat, no input devices) with
image-build/recipe/kiosk/sway.conf — only the browser it would start is left out — in a
runtime directory shaped like faced-kiosk.service's (mode 0750, UMask 0077), as another
user when the tests run as root (sway refuses to run as root). The real `faced serve` with
``display.driver = "wayland"`` switches the output through wlr-output-power-management
(faced.devices.wayland), and the compositor itself is asked what it did
(``swaymsg -t get_outputs``).

What a compositor can do on a virtual back end depends on its wlroots: wlroots 0.15 (sway
1.7, Debian bookworm) cannot disable a headless output at all (only its DRM back end can),
so there sway refuses and faced must say so — 503 naming the output, /health degraded — while
the output stays on. sway 1.10 (Debian trixie) switches it off and on, and faced must report
exactly that. Either way faced's answer must agree with the compositor's. To prove the
second case on a bookworm host, point FACED_TEST_SWAY_ROOT at a root filesystem with a newer
sway (as root: ``mmdebstrap --variant=apt --include=sway trixie DIR``, then mount /dev,
/dev/shm and /proc into it); the tests then run that sway through chroot.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.devices.wayland import WaylandError, set_output_power
from tests.helpers import copy_readable, python_for, shared_dir

REPO = Path(__file__).resolve().parents[2]
SWAY_CONFIG = REPO / "image-build" / "recipe" / "kiosk" / "sway.conf"
BROWSER_LINE = "exec /usr/lib/faced/kiosk/browser"
KIOSK_USER, KIOSK_GROUP = "nobody", "nogroup"  # when root: sway refuses to run as root
OTHER_USER = "daemon"  # stands for faced: not the kiosk's user, maybe in its group
SWAY_ROOT = os.environ.get("FACED_TEST_SWAY_ROOT", "")
WORKS_HEADLESS = (1, 10)
"""The first sway known here to switch a headless output off (1.10 on wlroots 0.18); 1.7 on
wlroots 0.15 cannot."""


@dataclass
class Sway:
    process: subprocess.Popen[bytes]
    root: Path
    runtime: Path
    socket: Path
    ipc: Path
    version: tuple[int, ...]
    as_user: list[str]
    log: Path

    def inside(self, path: Path) -> str:
        """``path`` as the compositor sees it (inside its root filesystem)."""
        return "/" + str(path.relative_to(self.root)) if self.root != Path("/") else str(path)

    async def outputs(self) -> list[dict[str, Any]]:
        """The compositor's own account of its outputs (IPC, as the kiosk user)."""
        process = await asyncio.create_subprocess_exec(
            *self.as_user,
            "env",
            f"SWAYSOCK={self.inside(self.ipc)}",
            "swaymsg",
            "--raw",
            "--type",
            "get_outputs",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        outputs: list[dict[str, Any]] = json.loads(stdout)
        return outputs

    async def powered(self) -> dict[str, bool]:
        # sway 1.7 calls it dpms; 1.8 and later also power.
        return {each["name"]: each.get("power", each["dpms"]) for each in await self.outputs()}

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def _as_kiosk_user(root: Path) -> list[str]:
    command = [] if root == Path("/") else ["chroot", str(root)]
    if os.geteuid() == 0:
        command += ["setpriv", f"--reuid={KIOSK_USER}", f"--regid={KIOSK_GROUP}", "--clear-groups"]
        command += ["--"]
    return command


def _version(as_user: list[str]) -> tuple[int, ...]:
    said = subprocess.run(
        [*as_user, "sway", "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    found = re.search(r"sway version (\d+)\.(\d+)", said)
    assert found, f"sway --version said {said!r}"
    return tuple(int(part) for part in found.groups())


def _workdir(root: Path) -> tuple[Path, Path]:
    """(base, runtime): not under pytest's tmp_path, which is private to the test's user,
    while the kiosk user (and in the group test a third one) must reach the runtime
    directory; shaped like faced-kiosk.service's (0750, the kiosk's user and group)."""
    base = Path(tempfile.mkdtemp(prefix="faced-wayland-", dir=root / "tmp"))
    base.chmod(0o711)
    runtime = base / "run"
    runtime.mkdir(mode=0o750)
    runtime.chmod(0o750)
    if os.geteuid() == 0:
        shutil.chown(runtime, KIOSK_USER, KIOSK_GROUP)
    return base, runtime


def _launch(root: Path, base: Path, script: str, *arguments: str) -> subprocess.Popen[bytes]:
    """Run ``sh -c script`` as the kiosk user (inside ``root``) with a headless wlroots
    environment, its output in base/compositor.log."""
    inside = "/" + str(base.relative_to(root)) if root != Path("/") else str(base)
    environment = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": f"{inside}/run",
        "XDG_RUNTIME_DIR": f"{inside}/run",
        "WLR_BACKENDS": "headless",
        "WLR_LIBINPUT_NO_DEVICES": "1",
        "WLR_RENDERER": "pixman",  # no GPU here
    }
    with (base / "compositor.log").open("wb") as sink:
        return subprocess.Popen(
            [
                *_as_kiosk_user(root),
                "env",
                "-i",
                *(f"{key}={value}" for key, value in environment.items()),
                *("sh", "-c", script, "sh", *arguments),
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes], base: Path) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    shutil.rmtree(base, ignore_errors=True)


def _wayland_socket(runtime: Path) -> Path | None:
    sockets = sorted(p for p in runtime.glob("wayland-[0-9]*") if not p.name.endswith(".lock"))
    return sockets[0] if sockets else None


@pytest.fixture
def sway() -> Iterator[Sway]:
    root = Path(SWAY_ROOT or "/")
    if SWAY_ROOT:
        if os.geteuid() != 0:
            pytest.skip("FACED_TEST_SWAY_ROOT needs root (chroot)")
        if not (root / "usr" / "bin" / "sway").exists():
            pytest.fail(f"FACED_TEST_SWAY_ROOT={SWAY_ROOT}: no usr/bin/sway in it")
        if not (root / "dev" / "shm").is_dir() or not (root / "proc" / "self").exists():
            pytest.fail(f"FACED_TEST_SWAY_ROOT={SWAY_ROOT}: mount /dev, /dev/shm and /proc in it")
    elif shutil.which("sway") is None:
        pytest.skip("sway is not installed: Debian's sway package (.ci/debian-packages.txt)")
    base, runtime = _workdir(root)
    config = base / "sway.conf"
    text = SWAY_CONFIG.read_text()
    assert BROWSER_LINE in text, "the kiosk config starts the browser"
    config.write_text(text.replace(BROWSER_LINE, "# (no browser in this test)"))
    config.chmod(0o644)
    process = _launch(
        root,
        base,
        'umask 077; exec sway --config "$1"',  # faced-kiosk.service's UMask=0077
        "/" + str(config.relative_to(root)) if root != Path("/") else str(config),
    )
    log = base / "compositor.log"
    try:
        socket = ipc = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            found = _wayland_socket(runtime)
            ipcs = list(runtime.glob("sway-ipc.*.sock"))
            # Ready once the config's chmod made the socket reachable for the group.
            if found and ipcs and stat.S_IMODE(found.stat().st_mode) == 0o660:
                socket, ipc = found, ipcs[0]
                break
            time.sleep(0.05)
        if socket is None or ipc is None:
            pytest.fail(f"sway did not come up with a group-shared socket:\n{log.read_text()}")
        as_user = _as_kiosk_user(root)
        yield Sway(process, root, runtime, socket, ipc, _version(as_user), as_user, log)
    finally:
        _stop(process, base)


@pytest.fixture
def cage_socket() -> Iterator[Path]:
    """Debian bookworm's cage (0.1.4, the kiosk before sway) on its headless back end, with
    a client that just waits; its Wayland socket."""
    if shutil.which("cage") is None or shutil.which("Xwayland") is None:
        pytest.skip("cage or Xwayland is not installed: Debian's cage and xwayland packages")
    root = Path("/")
    base, runtime = _workdir(root)
    process = _launch(root, base, "exec cage -- sleep 600")  # cage 0.1.4 needs Xwayland
    try:
        deadline = time.monotonic() + 20
        while (socket := _wayland_socket(runtime)) is None and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.05)
        if socket is None:
            pytest.fail(f"cage did not come up:\n{(base / 'compositor.log').read_text()}")
        yield socket
    finally:
        _stop(process, base)


def _config(sway: Sway, **display: Any) -> str:
    lines = ["[display]", "policy = false", "tool_timeout_s = 10"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in display.items()]
    return "\n".join(lines) + "\n"


async def test_put_display_switches_the_compositors_output(run_faced, sway: Sway) -> None:
    faced = await run_faced(
        "--display", "wayland", config_text=_config(sway, wayland_display=str(sway.socket))
    )
    assert await sway.powered() == {"HEADLESS-1": True}
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{faced.url}/api/display", json={"power": False}) as response:
            status, body = response.status, await response.json()
        powered = await sway.powered()
        if sway.version >= WORKS_HEADLESS:
            assert (status, body["power"], body["error"]) == (200, False, None), body
            assert powered == {"HEADLESS-1": False}, "faced said off: the compositor agrees"
            async with session.put(f"{faced.url}/api/display", json={"power": True}) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["power"] is True
            assert await sway.powered() == {"HEADLESS-1": True}
        else:
            # wlroots 0.15's headless outputs cannot be disabled: sway refuses ("Failed to
            # commit output"), the output stays on, and faced must not claim otherwise.
            assert sway.version == (1, 7), f"sway {sway.version}: add it to WORKS_HEADLESS?"
            assert status == 503, body
            assert body["error"] == (
                f"the display did not change: {sway.socket}: the compositor did not switch "
                "HEADLESS-1 off "
                "(it still reports it on)"
            )
            assert powered == {"HEADLESS-1": True}, "the compositor refused: still on"
            async with session.get(f"{faced.url}/health") as response:
                entry = (await response.json())["components"]["display"]
            assert (entry["status"], entry["driver"], entry["power_via"]) == (
                "error",
                "wayland",
                "wayland",
            )
            assert "Failed to commit output HEADLESS-1" in await asyncio.to_thread(sway.log_tail)
            # Power on (it is on) asks nothing of the back end: that works on both.
            async with session.put(f"{faced.url}/api/display", json={"power": True}) as response:
                assert response.status == 200, await response.text()
            async with session.get(f"{faced.url}/health") as response:
                assert (await response.json())["components"]["display"]["status"] == "ok"


async def test_auto_finds_the_compositor_and_names_missing_outputs(run_faced, sway: Sway) -> None:
    """driver auto with the socket inherited (WAYLAND_DISPLAY as a path, as libwayland
    accepts it) resolves to wayland; an output the compositor does not have is named."""
    faced = await run_faced(
        "--display",
        "auto",
        env={"WAYLAND_DISPLAY": str(sway.socket)},
        config_text='[display]\nbacklight_dir = "/nonexistent"\npolicy = false\n'
        'output = "HDMI-A-1"\n',
    )
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{faced.url}/api/display") as response:
            assert (await response.json())["driver"] == "wayland"
        async with session.put(f"{faced.url}/api/display", json={"power": True}) as response:
            assert response.status == 503
            assert (await response.json())["error"] == (
                f"the display did not change: {sway.socket}: no output 'HDMI-A-1' "
                "(the compositor has: HEADLESS-1)"
            )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as the kiosk and another user")
def test_the_socket_opens_to_the_kiosk_group_only(sway: Sway) -> None:
    """The sandbox story of faced-kiosk.service + faced.service: a process of another user
    reaches the compositor through group faced-kiosk (here: nogroup), and without the group
    it cannot; sway's IPC socket (commands as the kiosk user) stays private."""
    assert stat.S_IMODE(sway.runtime.stat().st_mode) == 0o750
    assert stat.S_IMODE(sway.socket.stat().st_mode) == 0o660
    assert stat.S_IMODE(sway.ipc.stat().st_mode) & 0o077 == 0
    group = grp.getgrnam(KIOSK_GROUP).gr_gid
    assert pwd.getpwnam(OTHER_USER).pw_gid != group
    probe = (
        "import asyncio\n"
        "from faced.devices.wayland import WaylandError, set_output_power\n"
        "try:\n"
        f"    print(asyncio.run(set_output_power({str(sway.socket)!r}, True, limit_s=10)))\n"
        "except WaylandError as exc:\n"
        "    print(exc)\n"
    )

    # The other user may not enter the checkout (a clone in a 0700 home), nor reach this
    # venv: it runs a readable copy of faced's source (the probe needs the standard library
    # and faced.devices.wayland only) with an interpreter it can execute.
    with shared_dir() as shared:
        copy_readable(REPO / "faced", shared)

        def as_other(*groups: str) -> str:
            as_user = ["setpriv", f"--reuid={OTHER_USER}", f"--regid={OTHER_USER}", *groups, "--"]
            completed = subprocess.run(
                [*as_user, python_for(as_user), "-s", "-c", probe],
                env={"PATH": os.environ["PATH"], "PYTHONPATH": str(shared)},
                cwd=shared,  # not the checkout's faced: the copy
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert completed.returncode == 0, completed.stderr
            return completed.stdout.strip()

        assert as_other(f"--groups={group}") == "['HEADLESS-1']"
        assert as_other("--clear-groups") == f"cannot connect to {sway.socket}: Permission denied"


async def test_a_compositor_without_power_management_is_named(run_faced, cage_socket: Path) -> None:
    """cage 0.1.4 offers neither output management nor output power management: faced says
    so instead of pretending (why the kiosk is sway)."""
    faced = await run_faced(
        "--display",
        "wayland",
        config_text="[display]\npolicy = false\n"
        f"wayland_display = {json.dumps(str(cage_socket))}\n",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{faced.url}/api/display", json={"power": False}) as response,
    ):
        assert response.status == 503
        assert (await response.json())["error"] == (
            f"the display did not change: {cage_socket}: the compositor has no "
            "zwlr_output_power_manager_v1 (wlr-output-power-management; sway, labwc and "
            "wayfire have it, cage 0.1.4 does not)"
        )


@pytest.mark.parametrize(
    ("behaviour", "words"),
    [
        ("close", "the compositor closed the connection"),
        ("silent", "the compositor did not answer in 0.5 s"),
        ("garbage", "the compositor sent a message of 65535 bytes: not Wayland"),
        ("short", "the compositor sent a malformed message"),
    ],
)
async def test_a_socket_that_is_no_compositor_is_named(
    tmp_path: Path, behaviour: str, words: str
) -> None:
    """The OS boundary misbehaving (a socket that hangs up, says nothing, speaks another
    protocol, or sends a Wayland event too short for its arguments): one line naming the
    socket and what went wrong, within the time limit."""

    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(64)
        if behaviour == "garbage":
            writer.write(b"\x01\x00\x00\x00\x00\x00\xff\xff" + b"x" * 64)
            await writer.drain()
        elif behaviour == "short":  # a registry global (object 2, opcode 0) with no arguments
            writer.write(b"\x02\x00\x00\x00\x00\x00\x08\x00")
            await writer.drain()
            await done.wait()
        if behaviour == "silent":
            await done.wait()
        writer.close()
        await writer.wait_closed()

    path = tmp_path / "wayland-9"
    server = await asyncio.start_unix_server(serve, path=str(path))
    try:
        with pytest.raises(WaylandError) as caught:
            await set_output_power(str(path), False, limit_s=0.5)
    finally:
        done.set()
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # the handler closes its side
    assert str(caught.value) == f"{path}: {words}"
