"""`faced bench memory`: the daemon's resident memory through its day, and how fast it starts.

Owns: this measurement and its table. Does not own: the daemon it measures (`faced serve`,
run as a child process of the interpreter running this command, so a runtime-only venv
measures a runtime-only daemon) or MediaPipe's process (bench/mediapipe_video.py, run
under .venv-ref's python when the checkout has them).

One run, each figure read from /proc (VmRSS, RssAnon, VmHWM, threads) of the real process:

1. ``--camera none`` after READY and once settled (faced.resident): the bare daemon (API,
   sockets, no models loaded);
2. ``--camera demo`` with live tracking, after a warm-up; then with ``--viewers`` real
   WebSocket viewers on /ws/viewer; then under analyze load (``--clients`` clients POSTing
   a 640×480 JPEG to /v1/analyze back to back: the analyze worker loads its models); then
   idle again after ``--minutes`` (growth shows here, and in the lowest and highest RSS
   read every 10 s meanwhile; 5 for the release figure);
3. beside it, the peak RSS of MediaPipe's Face Landmarker (VIDEO mode) and of `faced
   analyze --jsonl` on the same clip of the demo photograph: the pipeline alone, each side;
4. start: spawn → ``READY=1`` (systemd's ``NOTIFY_SOCKET``, as Type=notify waits) and
   spawn → first tracking result (``/health``'s tracking ``processed``), median of
   ``--starts`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from faced import resident
from faced.bench.server import client_loop_factory, free_port, positive

REPO: Final = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S: Final = 120.0
POLL_S: Final = 0.02
SETTLED_S: Final = resident.SETTLE_S + resident.STABLE_S + 2.0
"""After READY, the daemon has given back start-up's memory (faced.resident.settle_after)."""
IDLE_SAMPLE_S: Final = 10.0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=positive(float), default=0.5, help="idle phase (0.5; 5)")
    parser.add_argument("--warm-up", type=positive(float), default=10.0, help="tracking warm-up s")
    parser.add_argument("--viewers", type=_count, default=50, help="/ws/viewer clients (50)")
    parser.add_argument("--clients", type=_count, default=2, help="/v1/analyze clients (2)")
    parser.add_argument("--load-s", type=positive(float), default=10.0, help="analyze load, s (10)")
    parser.add_argument("--starts", type=_count, default=3, help="start-time runs (3)")
    parser.add_argument(
        "--idle-unload-s",
        type=float,
        default=None,
        help="vision.analyze_idle_unload_s for the daemon (its default: 300)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip MediaPipe and faced analyze"
    )


@dataclass(frozen=True)
class Sample:
    rss_mib: float
    anon_mib: float
    peak_mib: float
    threads: int


def sample(pid: int) -> Sample:
    """The process's memory now, from /proc/PID/status (Linux)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "VmHWM", "Threads"):
            fields[key] = int(value.split()[0])
    return Sample(
        fields["VmRSS"] / 1024, fields["RssAnon"] / 1024, fields["VmHWM"] / 1024, fields["Threads"]
    )


class Daemon:
    """`faced serve` as a child with a NOTIFY_SOCKET this bench owns (as systemd would)."""

    def __init__(self, camera: str, scratch: Path, idle_unload_s: float | None = None) -> None:
        self.port = free_port()
        config = scratch / "faced.toml"
        text = "[logging]\nlevel = 'warning'\n"
        if idle_unload_s is not None:
            text += f"[vision]\nanalyze_idle_unload_s = {idle_unload_s}\n"
        config.write_text(text)
        self._notify_path = str(scratch / f"notify-{self.port}")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(self._notify_path)
        self._notify.setblocking(False)
        command = [sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--camera", camera, "--config", str(config)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "NOTIFY_SOCKET": self._notify_path},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self) -> float:
        """Seconds from spawn to READY=1."""
        loop = asyncio.get_running_loop()
        while time.perf_counter() - self.started < READY_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"faced exited with {self.process.returncode} before READY")
            try:
                message = await asyncio.wait_for(loop.sock_recv(self._notify, 4096), 0.5)
            except TimeoutError:
                continue
            if b"READY=1" in message.split(b"\n"):
                return time.perf_counter() - self.started
        raise RuntimeError(f"no READY=1 within {READY_TIMEOUT_S:.0f} s")

    async def first_result(self, session: Any) -> float:
        """Seconds from spawn to the first tracking result (/health, polled)."""
        while time.perf_counter() - self.started < READY_TIMEOUT_S:
            async with session.get(f"{self.url}/health") as response:
                tracking = (await response.json())["components"].get("tracking", {})
            if tracking.get("processed", 0) >= 1:
                return time.perf_counter() - self.started
            await asyncio.sleep(POLL_S)
        raise RuntimeError("no tracking result")

    def sample(self) -> Sample:
        return sample(self.process.pid)

    async def stop(self) -> None:
        self.process.terminate()
        try:
            await asyncio.to_thread(self.process.wait, 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)
        self._notify.close()
        with contextlib.suppress(OSError):
            os.unlink(self._notify_path)


@contextlib.asynccontextmanager
async def _viewers(url: str, count: int) -> AsyncIterator[None]:
    """``count`` real WebSocket viewers, each reading every message until closed."""
    import aiohttp  # noqa: PLC0415

    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(f"{url}/ws/viewer") for _ in range(count)]

        async def drain(ws: Any) -> None:
            async for _message in ws:
                pass

        readers = [asyncio.create_task(drain(ws), name="viewer") for ws in sockets]
        try:
            await asyncio.sleep(1.0)  # the hello and state each viewer gets on connecting
            yield
        finally:
            for ws in sockets:
                await ws.close()
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


async def _analyze_load(url: str, clients: int, seconds: float, jpeg: bytes) -> int:
    """POST ``jpeg`` to /v1/analyze from ``clients`` clients for ``seconds``; answers 200."""
    import aiohttp  # noqa: PLC0415

    done = 0
    deadline = time.perf_counter() + seconds

    async def client(session: Any) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with session.post(
                f"{url}/v1/analyze", data=jpeg, headers={"Content-Type": "image/jpeg"}
            ) as response:
                await response.read()
                done += response.status == 200

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return done


async def _sampled(daemon: Daemon, seconds: float) -> list[float]:
    """Wait ``seconds``, reading the daemon's RSS every IDLE_SAMPLE_S (growth shows)."""
    seen = [daemon.sample().rss_mib]
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(min(IDLE_SAMPLE_S, left))
        seen.append(daemon.sample().rss_mib)
    return seen


def _demo_photo() -> Path:
    from faced.vision.models import default_model_dir  # noqa: PLC0415

    return default_model_dir() / "demo_face.png"


def _jpeg() -> bytes:
    import cv2  # noqa: PLC0415

    from faced.vision.synthetic import load_photo, render_frame  # noqa: PLC0415

    frame = render_frame(load_photo(_demo_photo()), 0, (640, 480), _motion())
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    return bytes(encoded)


def _motion() -> Any:
    from faced.vision.synthetic import Motion  # noqa: PLC0415

    return Motion()


def peak_rss_mib(command: list[str]) -> float:
    """Run ``command`` to its end (stdout discarded); its peak RSS (wait4's ru_maxrss)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} … exited with {process.returncode}")
    return usage.ru_maxrss / 1024


def references(scratch: Path, frames: int = 150) -> list[tuple[str, float | str]]:
    """Peak RSS of MediaPipe's process and of `faced analyze` on the same clip."""
    from faced.vision.synthetic import cached_clip  # noqa: PLC0415

    clip = cached_clip(_demo_photo(), scratch, frames)
    rows: list[tuple[str, float | str]] = []
    faced = [sys.executable, "-m", "faced", "analyze", str(clip), "--jsonl"]
    rows.append((f"faced analyze on the clip ({frames} frames), peak", peak_rss_mib(faced)))
    python = REPO / ".venv-ref" / "bin" / "python"
    script = REPO / "bench" / "mediapipe_video.py"
    bundle = REPO / "tests" / ".data" / "face_landmarker.task"
    name = f"MediaPipe Face Landmarker on the clip ({frames} frames), peak"
    if python.is_file() and script.is_file() and bundle.is_file():
        rows.append(
            (name, peak_rss_mib([str(python), str(script), str(clip), "--model", str(bundle)]))
        )
    else:
        rows.append((name, "skipped: needs a checkout with .venv-ref and test data"))
    return rows


async def _measure(args: argparse.Namespace) -> list[tuple[str, Sample | float | str]]:
    import aiohttp  # noqa: PLC0415

    rows: list[tuple[str, Sample | float | str]] = []
    with tempfile.TemporaryDirectory(prefix="faced-bench-memory-") as name:
        scratch = Path(name)
        bare = Daemon("none", scratch)
        try:
            await bare.ready()
            await asyncio.sleep(2.0)
            rows.append(("--camera none, after READY", bare.sample()))
            await asyncio.sleep(SETTLED_S - 2.0)
            rows.append(("--camera none, settled", bare.sample()))
        finally:
            await bare.stop()

        ready: list[float] = []
        first: list[float] = []
        async with aiohttp.ClientSession() as session:
            for run in range(args.starts):
                daemon = Daemon("demo", scratch, args.idle_unload_s)
                try:
                    ready.append(await daemon.ready())
                    first.append(await daemon.first_result(session))
                    if run < args.starts - 1:
                        continue
                    await asyncio.sleep(args.warm_up)
                    rows.append(
                        (f"--camera demo, tracking, after {args.warm_up:g} s", daemon.sample())
                    )
                    async with _viewers(daemon.url, args.viewers):
                        rows.append((f"+ {args.viewers} viewers on /ws/viewer", daemon.sample()))
                        jpeg = await asyncio.to_thread(_jpeg)
                        answered = await _analyze_load(daemon.url, args.clients, args.load_s, jpeg)
                        rows.append(
                            (
                                f"+ analyze load ({answered} answers in {args.load_s:g} s)",
                                daemon.sample(),
                            )
                        )
                    seen = await _sampled(daemon, args.minutes * 60)
                    rows.append((f"idle again, {args.minutes:g} min later", daemon.sample()))
                    rows.append(
                        (
                            f"idle phase, RSS lowest - highest (every {IDLE_SAMPLE_S:g} s)",
                            f"{min(seen):8.1f} - {max(seen):.1f}",
                        )
                    )
                finally:
                    await daemon.stop()
        rows.append(("start: spawn → READY=1 (s, median)", statistics.median(ready)))
        rows.append(("start: spawn → first tracking result (s, median)", statistics.median(first)))
        if not args.no_reference:
            rows += await asyncio.to_thread(references, scratch)
    return rows


def table(rows: list[tuple[str, Sample | float | str]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [f"{'':<{width}}  {'RSS MiB':>8} {'anon MiB':>8} {'peak MiB':>8} {'threads':>7}"]
    for name, value in rows:
        if isinstance(value, Sample):
            figures = f"{value.rss_mib:8.1f} {value.anon_mib:8.1f} {value.peak_mib:8.1f}"
            figures += f" {value.threads:7d}"
        elif isinstance(value, float):
            figures = f"{value:8.2f}"
        else:
            figures = value
        lines.append(f"{name:<{width}}  {figures}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if not Path("/proc/self/status").is_file():
        print("faced bench memory: needs Linux's /proc", file=sys.stderr)
        return 2
    print(f"python: {sys.executable}; cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.2f}")
    print(f"MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '(unset)')}")
    factory: Callable[[], asyncio.AbstractEventLoop] | None = client_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        rows = runner.run(_measure(args))
    print(table(rows))
    return 0
