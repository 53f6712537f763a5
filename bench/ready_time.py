"""Start-to-READY time of `faced serve`, the figure systemd's Type=notify waits for.

Starts the real daemon as a child process with a ``NOTIFY_SOCKET`` datagram socket owned by
this script (as systemd would), and measures the time from spawning it to the ``READY=1``
datagram (models loaded, port bound), then stops it with SIGTERM. Side by side, the baseline
measured in the same run: the bare interpreter (``python -c pass``) and the interpreter
importing faced's composition root, so the figure can be read against what no daemon could
beat.

    .venv/bin/python bench/ready_time.py                 # --camera none and demo, 5 runs each
    .venv/bin/python bench/ready_time.py --mdwe          # the same under MemoryDenyWriteExecute

``--mdwe`` runs every child with the kernel's ``PR_SET_MDWE`` (refuse write+exec memory,
inherited over exec: what ``MemoryDenyWriteExecute=yes`` enforces), and posts a
photograph to ``/v1/analyze`` once READY, so LiteRT/XNNPACK really run under it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
# Runs in the child: switch W^X enforcement on, then exec the real command.
MDWE_SHIM = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
    "    sys.exit('PR_SET_MDWE failed: errno %d' % ctypes.get_errno())\n"
    "import mmap\n"
    "try:\n"  # the proof that it is on: write+exec memory is refused from now on
    "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
    "except PermissionError:\n"
    "    pass\n"
    "else:\n"
    "    sys.exit('PR_SET_MDWE did not refuse a write+exec mapping')\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wrap(command: list[str], mdwe: bool) -> list[str]:
    return [PYTHON, "-c", MDWE_SHIM, *command] if mdwe else command


def time_command(command: list[str], mdwe: bool) -> float:
    started = time.perf_counter()
    subprocess.run(wrap(command, mdwe), check=True)
    return time.perf_counter() - started


def analyze(port: int, photo: Path) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/analyze",
        data=photo.read_bytes(),
        headers={"Content-Type": "image/png"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(json.load(response)["faces"])


def time_ready(camera: str, mdwe: bool, photo: Path | None, timeout: float) -> float:
    with tempfile.TemporaryDirectory(prefix="faced-ready-") as scratch:
        path = os.path.join(scratch, "notify")
        config = Path(scratch, "faced.toml")
        config.write_text("[logging]\nlevel = 'warning'\n")
        port = free_port()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(path)
            notify.settimeout(0.5)
            command = [
                str(REPO / ".venv" / "bin" / "faced"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--camera",
                camera,
                "--config",
                str(config),
            ]
            environ = {**os.environ, "NOTIFY_SOCKET": path}
            started = time.perf_counter()
            child = subprocess.Popen(wrap(command, mdwe), env=environ)
            try:
                while True:
                    if time.perf_counter() - started > timeout:
                        raise SystemExit(f"no READY=1 within {timeout:.0f} s")
                    if child.poll() is not None:
                        raise SystemExit(f"faced exited with {child.returncode} before READY")
                    try:
                        message = notify.recv(4096)
                    except TimeoutError:
                        continue
                    if b"READY=1" in message.split(b"\n"):
                        ready = time.perf_counter() - started
                        break
                if photo is not None:
                    faces = analyze(port, photo)
                    if faces < 1:
                        raise SystemExit(f"/v1/analyze found no face in {photo.name}")
                    print(f"  /v1/analyze on {photo.name}: {faces} face(s) found", flush=True)
            finally:
                child.send_signal(signal.SIGTERM)
                child.wait(30)
    return ready


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cameras", nargs="+", default=["none", "demo"])
    parser.add_argument("--mdwe", action="store_true", help="run under PR_SET_MDWE (W^X)")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    photo = REPO / "tests" / ".data" / "lenna.png"
    if args.mdwe and not photo.is_file():
        raise SystemExit(f"{photo} missing: run `make test-data` first")

    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f}; cores: {os.cpu_count()}; mdwe: {args.mdwe}")
    baselines = {
        "python -c pass": [PYTHON, "-c", "pass"],
        "python -c 'import faced.app'": [PYTHON, "-c", "import faced.app"],
    }
    rows: dict[str, list[float]] = {}
    for name, command in baselines.items():
        rows[f"baseline: {name}"] = [time_command(command, args.mdwe) for _ in range(args.runs)]
    for camera in args.cameras:
        values = []
        for _ in range(args.runs):
            values.append(time_ready(camera, args.mdwe, photo if args.mdwe else None, args.timeout))
        rows[f"faced serve --camera {camera}: spawn → READY=1"] = values
    width = max(len(name) for name in rows)
    for name, values in rows.items():
        print(f"{name:<{width}}  {summary(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
