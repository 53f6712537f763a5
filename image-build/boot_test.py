"""`make image-test`: boot the built image under qemu and check it from outside, as the owner
of a freshly flashed card would.

Stdlib only (runs with any python3). Steps:

1. copy build/image/faced-arm64.img to a scratch "card" (the built image stays pristine);
   check that neither partition holds an API key (never baked into the image) and put the
   owner's faced.toml on the boot partition (a non-default port, so its use is visible);
2. boot it: qemu-system-aarch64 -M virt -cpu cortex-a72, user-mode networking forwarding a
   loopback port to that port; wait for systemd's "Started faced.service" on the serial
   console (Type=notify: printed only after READY=1) and for GET /health; boot-to-READY time;
3. /health answers with the model version; the API requires the key; /v1/analyze finds the
   face on a test photograph when the daemon has that endpoint (skipped LOUDLY otherwise);
   on the second boot, after analyze: the daemon's RSS and its cgroup's MemoryCurrent and
   memory.peak from faced-report-memory.service, each at most the unit's MemoryHigh;
4. power down cleanly (ACPI power button), read faced-api-key.txt from the boot partition;
5. remove faced.toml from the boot partition and boot again: the config (port) and the key
   are kept; shut down again.

Exit status: 0 passed, 1 failed, 77 skipped (no emulation here; the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BOOT_OFFSET = 1024 * 1024  # p1 starts at 1 MiB (build-image.sh)
GUEST_PORT = 8642  # set by the owner's faced.toml below; the default is 9999
# systemd's status lines on the console: "[  OK  ] Started faced.service - …" (coloured).
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# faced-report-ready.service (build-image.sh), ordered after faced.service's start job, which
# for Type=notify ends at READY=1: "FACED-READY ActiveState=active SubState=running …".
READY_LINE = re.compile(r"FACED-READY (.*)")
# The same unit, then: faced's "serving" log entry's FACED_PORT field from journalctl -o json.
JOURNAL_LINE = re.compile(r"FACED-JOURNAL (\S+)")
# faced-report-memory.service (build-image.sh), every 10 s: "FACED-MEMORY VmRSSkB=… MemoryPeak=…
# MemoryCurrent=… MemoryHigh=… MemoryMax=… TasksCurrent=… TasksMax=…" (bytes; kB for VmRSS).
MEMORY_LINE = re.compile(r"FACED-MEMORY (.*)")
FAILED_LINE = re.compile(r"Failed to start faced\.service|faced\.service: Failed with result")
SKIPPED: list[str] = []


class Failure(Exception):
    pass


def log(message: str) -> None:
    print(f"[image-test] {message}", flush=True)


def skip_loudly(what: str, why: str) -> None:
    SKIPPED.append(f"{what}: {why}")
    bar = "!" * 78
    print(f"{bar}\n! SKIPPED {what}\n!   {why}\n{bar}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)
    log(f"ok: {message}")


# --- the card's boot partition, read and written from outside (mtools) --------------------


def boot_files(card: Path) -> set[str]:
    listing = subprocess.run(
        ["mdir", "-b", "-i", f"{card}@@{BOOT_OFFSET}", "::/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {Path(line.strip()).name.lower() for line in listing.splitlines() if line.strip()}


def boot_read(card: Path, name: str) -> str:
    return subprocess.run(
        ["mtype", "-i", f"{card}@@{BOOT_OFFSET}", f"::/{name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def boot_write(card: Path, name: str, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(text)
    try:
        subprocess.run(
            ["mcopy", "-o", "-i", f"{card}@@{BOOT_OFFSET}", handle.name, f"::/{name}"],
            check=True,
        )
    finally:
        os.unlink(handle.name)


def boot_delete(card: Path, name: str) -> None:
    subprocess.run(["mdel", "-i", f"{card}@@{BOOT_OFFSET}", f"::/{name}"], check=True)


def root_has_file(card: Path, path: str) -> bool:
    """Whether the ext4 root (p2) holds ``path``, read with debugfs at the partition's offset."""
    table = subprocess.run(
        ["sfdisk", "--json", str(card)], capture_output=True, text=True, check=True
    ).stdout
    start = int(json.loads(table)["partitiontable"]["partitions"][1]["start"])
    completed = subprocess.run(
        ["debugfs", "-R", f"stat {path}", f"{card}?offset={start * 512}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "File not found" in completed.stderr:
        return False
    if completed.returncode == 0 and "Inode:" in completed.stdout:
        return True
    raise Failure(f"debugfs cannot read the root partition: {completed.stderr.strip()}")


# --- the emulated machine -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Machine:
    def __init__(self, image_dir: Path, card: Path, workdir: Path, name: str) -> None:
        self.console = workdir / f"console-{name}.log"
        self.monitor = workdir / f"monitor-{name}.sock"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            "qemu-system-aarch64",
            "-M",
            "virt",
            "-cpu",
            "cortex-a72",
            "-smp",
            "2",
            "-m",
            "2048",
            "-accel",
            "tcg,thread=multi",
            "-kernel",
            str(image_dir / "vmlinuz"),
            "-initrd",
            str(image_dir / "initrd.img"),
            "-append",
            "root=/dev/vda2 rw console=ttyAMA0 systemd.show_status=1",
            "-drive",
            f"file={card},format=raw,if=virtio",
            "-netdev",
            f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.port}-:{GUEST_PORT}",
            "-device",
            "virtio-net-pci,netdev=net0,romfile=",  # no PXE ROM: nothing boots from the network
            "-display",
            "none",
            "-serial",
            f"file:{self.console}",
            "-monitor",
            f"unix:{self.monitor},server,nowait",
        ]
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def console_text(self) -> str:
        """The serial console so far, without the colour codes systemd puts around names."""
        try:
            return ANSI_ESCAPE.sub("", self.console.read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float) -> tuple[float, dict[str, str]]:
        """Seconds from power-on until systemd reports faced.service started (READY=1), and
        what systemd says about the service then."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            text = self.console_text()
            if FAILED_LINE.search(text):
                raise Failure("faced.service failed to start:\n" + self.tail())
            if ready := READY_LINE.search(text):
                seen = time.monotonic() - self.started
                fields = re.findall(r"(\w+)=(.*?)(?= \w+=|\s*$)", ready.group(1).strip())
                return seen, dict(fields)
            if self.process.poll() is not None:
                raise Failure(f"qemu exited ({self.process.returncode}):\n" + self.tail())
            time.sleep(0.5)
        raise Failure(f"no READY from faced.service within {timeout:.0f} s:\n" + self.tail())

    def wait_console(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := pattern.search(self.console_text()):
                return found
            time.sleep(0.5)
        raise Failure(f"no {pattern.pattern!r} on the console within {timeout:.0f} s")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def wait_http(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                status, body = self.request("/health", timeout=10)
                if status == 200 and isinstance(body, dict):
                    return body
                last = (status, body)
            except (OSError, urllib.error.URLError) as error:
                last = error
            time.sleep(1)
        raise Failure(f"GET /health did not answer through the forwarded port: {last}")

    def power_down(self, timeout: float = 180) -> float:
        """Press the (virtual) power button and wait for a clean power-off."""
        started = time.monotonic()
        with socket.socket(socket.AF_UNIX) as monitor:
            monitor.connect(str(self.monitor))
            monitor.sendall(b"system_powerdown\n")
            time.sleep(1)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("the machine did not power off cleanly:\n" + self.tail()) from None
        check(
            "reboot: Power down" in self.console_text(),
            "clean power-off (kernel printed 'reboot: Power down')",
        )
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# --- the checks ---------------------------------------------------------------------------


def find_value(data: Any, wanted: str) -> bool:
    if isinstance(data, dict):
        return any(find_value(value, wanted) for value in data.values())
    if isinstance(data, list):
        return any(find_value(value, wanted) for value in data)
    return data == wanted


def check_ready(machine: Machine, boot: str, timeout: float, figures: dict[str, float]) -> None:
    seen, state = machine.wait_ready(timeout)
    check(
        (state.get("ActiveState"), state.get("SubState")) == ("active", "running"),
        f"{boot}: systemd reports faced.service active after READY=1 ({state})",
    )
    started = int(state["ExecMainStartTimestampMonotonic"]) / 1e6
    ready = int(state["ActiveEnterTimestampMonotonic"]) / 1e6
    figures[f"{boot}: power-on to READY seen from outside (s)"] = seen
    figures[f"{boot}: kernel start to READY, guest clock (s)"] = ready
    figures[f"{boot}: faced start to READY, guest clock (s)"] = ready - started
    log(f"{boot}: faced READY {seen:.1f} s after power-on ({ready - started:.1f} s after exec)")
    journal = machine.wait_console(JOURNAL_LINE, 60)
    check(
        journal.group(1) == f'"FACED_PORT":"{GUEST_PORT}"',
        f"{boot}: faced logs structured fields to the journal ({journal.group(1)})",
    )


def check_health(machine: Machine, health: dict[str, Any], model_version: str) -> None:
    check(health.get("status") == "ok", f"/health status ok ({health.get('status')!r})")
    check(
        find_value(health, model_version),
        f"/health reports the model version {model_version!r}: {json.dumps(health)[:300]}",
    )
    api = health.get("components", {}).get("api", {})
    check(api.get("auth") is True, "the daemon runs with an API key (credential loaded)")


def check_key_required(machine: Machine, key: str) -> None:
    body = json.dumps({"state": "thinking"}).encode()
    status, _ = machine.request("/api/state", method="POST", body=body)
    if status in (404, 405):
        skip_loudly("API key round trip", f"POST /api/state answers {status}: not built yet")
        return
    check(status == 401, f"POST /api/state without the key is refused (status {status})")
    status, _ = machine.request(
        "/api/state",
        method="POST",
        body=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    check(status == 200, f"POST /api/state with the key from the boot partition ({status})")


def check_analyze(machine: Machine, key: str, photo: Path | None) -> None:
    status, spec = machine.request("/openapi.json")
    advertised = status == 200 and isinstance(spec, dict) and "/v1/analyze" in spec.get("paths", {})
    probe_status, _ = machine.request("/v1/analyze", method="POST", body=b"")
    if not advertised and probe_status == 404:
        skip_loudly(
            "/v1/analyze on a test photograph",
            "the daemon does not have /v1/analyze yet (not in /openapi.json, POST answers 404)",
        )
        return
    if photo is None:
        raise Failure("/v1/analyze exists but no test photograph: run `make test-data` first")
    status, result = machine.request(
        "/v1/analyze",
        method="POST",
        body=photo.read_bytes(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "image/png"},
        timeout=180,
    )
    faces = result.get("faces") if isinstance(result, dict) else None
    check(status == 200 and bool(faces), f"/v1/analyze finds the face in {photo.name} ({status})")


def _size(value: str | None) -> int | None:
    """A byte count systemd or the kernel printed; None for unset, "infinity" or "none"."""
    return int(value) if value is not None and value.isdigit() else None


def check_memory(machine: Machine, boot: str, figures: dict[str, float]) -> None:
    """The daemon's memory inside the emulated Pi, after what ran so far (start, /health,
    analyze: the analyze worker has loaded its models), held against the unit's MemoryHigh
    and TasksMax. Memory does not depend on emulation speed; the figures are arm64's own."""
    seen = len(MEMORY_LINE.findall(machine.console_text()))
    deadline = time.monotonic() + 60
    while len(lines := MEMORY_LINE.findall(machine.console_text())) <= seen:
        if time.monotonic() > deadline:
            raise Failure("no FACED-MEMORY line on the console (faced-report-memory.service)")
        time.sleep(0.5)
    fields = dict(re.findall(r"(\w+)=(\S*)", lines[-1]))
    mib = 1 << 20
    rss_kb, current = _size(fields.get("VmRSSkB")), _size(fields.get("MemoryCurrent"))
    peak, high = _size(fields.get("MemoryPeak")), _size(fields.get("MemoryHigh"))
    tasks, tasks_max = _size(fields.get("TasksCurrent")), _size(fields.get("TasksMax"))
    check(high is not None, f"{boot}: faced.service has a MemoryHigh ({fields})")
    check(rss_kb is not None and current is not None, f"{boot}: faced's memory read ({fields})")
    assert high is not None and rss_kb is not None and current is not None
    figures[f"{boot}: faced RSS after analyze, in the emulated Pi (MiB)"] = rss_kb / 1024
    figures[f"{boot}: faced.service MemoryCurrent (MiB)"] = current / mib
    if peak is not None:
        figures[f"{boot}: faced.service memory.peak since start (MiB)"] = peak / mib
    else:
        skip_loudly("the cgroup's memory.peak", "this kernel has no memory.peak")
    log(
        f"{boot}: faced RSS {rss_kb / 1024:.1f} MiB, MemoryCurrent {current / mib:.1f} MiB, "
        f"peak {peak / mib if peak else float('nan'):.1f} MiB, MemoryHigh {high / mib:.0f} MiB; "
        f"tasks {tasks} of {tasks_max}"
    )
    for name, value in (("RSS", rss_kb * 1024), ("MemoryCurrent", current), ("peak", peak)):
        if value is not None:
            check(value <= high, f"{boot}: faced's {name} {value / mib:.1f} MiB <= MemoryHigh")
    if tasks is not None and tasks_max is not None:
        check(tasks <= tasks_max, f"{boot}: faced's tasks {tasks} <= TasksMax {tasks_max}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-dir", type=Path, default=REPO / "build" / "image")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to READY per boot")
    parser.add_argument("--keep", action="store_true", help="keep the scratch card and logs")
    args = parser.parse_args()

    missing = [
        tool for tool in ("qemu-system-aarch64", "mtype", "debugfs") if not shutil.which(tool)
    ]
    if missing:
        print(
            f"SKIPPED image-test: {', '.join(missing)} missing (apt-get install "
            "qemu-system-arm mtools e2fsprogs)",
            file=sys.stderr,
        )
        return 77
    image = args.image_dir / "faced-arm64.img"
    if not image.is_file():
        raise Failure(f"{image} missing: run `make image` first")
    manifest = tomllib.loads((REPO / "models" / "manifest.toml").read_text())
    model_version = manifest["bundle"]["version"]
    photo = REPO / "tests" / ".data" / "lenna.png"

    workdir = Path(tempfile.mkdtemp(prefix="faced-image-test-"))
    card = workdir / "card.img"
    figures: dict[str, float] = {}
    machine: Machine | None = None
    try:
        subprocess.run(["cp", "--sparse=always", str(image), str(card)], check=True)
        check(
            "faced-api-key.txt" not in boot_files(card),
            "no API key on the fresh card's boot partition",
        )
        check(
            not root_has_file(card, "/etc/faced/api-key"),
            "no API key in the fresh card's root filesystem",
        )
        boot_write(card, "faced.toml", f"[server]\nport = {GUEST_PORT}\n")

        log("boot 1 (first boot)")
        machine = Machine(args.image_dir, card, workdir, "boot1")
        check_ready(machine, "boot 1", args.timeout, figures)
        health = machine.wait_http(120)
        check_health(machine, health, model_version)
        figures["boot 1: power-off (s)"] = machine.power_down()
        machine = None

        key = boot_read(card, "faced-api-key.txt").strip()
        check(
            re.fullmatch(r"[A-Za-z0-9_-]{43}", key) is not None,
            "the generated API key is on the boot partition",
        )
        check(
            root_has_file(card, "/etc/faced/faced.toml"),
            "faced.toml installed from the boot partition",
        )

        boot_delete(card, "faced.toml")
        log("boot 2 (reboot; faced.toml removed from the boot partition)")
        machine = Machine(args.image_dir, card, workdir, "boot2")
        check_ready(machine, "boot 2", args.timeout, figures)
        health = machine.wait_http(120)
        log(f"ok: config kept: faced still serves on port {GUEST_PORT} from /etc/faced/faced.toml")
        check_health(machine, health, model_version)
        check_key_required(machine, key)
        check_analyze(machine, key, photo if photo.is_file() else None)
        check_memory(machine, "boot 2", figures)
        machine.power_down()
        machine = None
        check(
            boot_read(card, "faced-api-key.txt").strip() == key,
            "the key is unchanged after the reboot",
        )
    except Failure as failure:
        print(f"[image-test] FAILED: {failure}", file=sys.stderr)
        print(f"[image-test] logs kept in {workdir}", file=sys.stderr)
        args.keep = True
        return 1
    finally:
        if machine is not None:
            machine.kill()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, value in figures.items():
        log(f"figure: {name} = {value:.1f}")
    if SKIPPED:
        log("PASSED with SKIPPED checks:\n  " + "\n  ".join(SKIPPED))
    else:
        log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
