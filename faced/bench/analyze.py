"""`faced bench analyze`: POST /v1/analyze over loopback, 1 vs 2 pipeline workers.

Owns: this measurement and its load generator. Does not own: starting the daemon or
reading its CPU time (faced.bench.server). One run measures, on a 640x480 JPEG of a face:

* **baseline** — the same decode + ``FacePipeline.analyze`` in this process, no HTTP: the
  floor any server pays per image;
* **faced, N workers** (N = 1 and 2, all daemons running at once) — the real daemon
  (``python -m faced serve`` with ``vision.analyze_workers = N``, API key set, rate limits
  out of the way) in its own process; this process is the load generator (raw keep-alive
  HTTP/1.1 clients posting the image as ``image/jpeg``, on uvloop):
  - latency: one request at a time, p50 / p99 (goal p50 ≤ 10 ms; Eyeconic advertises
    p50 14.8 ms), in ``--rounds`` rounds that alternate with the baseline's, so the HTTP
    overhead printed is measured against a floor taken in the same minutes; also for a
    1-worker daemon with ``vision.threads = --latency-threads`` (default 2: one request
    may use two cores, the setting for a box that answers one agent at a time);
  - throughput: ``--connections`` (default 2 x N) concurrent clients, ``--rounds``
    rounds of ``--seconds`` alternating between the servers, best round of each;
    requests/s; the figure is the 2-worker / 1-worker ratio (goal ≥ 1.8x). Beside it,
    the CPU time per request of the server process and of this load generator.

Scaling needs a core per worker, and the event loop and the load generator take their
share of the same cores: the output says what ceiling their CPU per request puts on the
ratio on this machine, and how loaded the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from faced.bench.server import client_loop_factory, cpu_seconds, free_port, running_server

API_KEY: Final = "bench-key"
WIDTH, HEIGHT = 640, 480
P50_GOAL_MS: Final = 10.0
SCALING_GOAL: Final = 1.8
DEFAULT_PHOTO: Final = "lenna.png"
_TEST_DATA: Final = Path(__file__).resolve().parents[2] / "tests" / ".data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--requests", type=int, default=200, help="sequential requests for latency (200)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="length of each throughput round (5)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=0,
        help="concurrent clients for throughput (default 2 per worker)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating throughput rounds per server (3)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare (1 2)"
    )
    parser.add_argument(
        "--latency-threads",
        type=int,
        default=2,
        help="vision.threads of an extra 1-worker daemon measured for latency (2; 1: none)",
    )
    parser.add_argument(
        "--photo", type=Path, default=None, help="face photo (default tests/.data/lenna.png)"
    )


def make_jpeg(photo: Path | None) -> bytes:
    """A 640x480 JPEG (quality 90) with the photo's face centred on a grey background."""
    import cv2  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    path = photo or _TEST_DATA / DEFAULT_PHOTO
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(
            f"{path}: cannot read the face photo (run `python -m tests.data fetch` or pass --photo)"
        )
    scale = min(WIDTH / image.shape[1], HEIGHT / image.shape[0]) * 0.8
    face = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)))
    canvas = np.full((HEIGHT, WIDTH, 3), 110, dtype=np.uint8)
    top = (HEIGHT - face.shape[0]) // 2
    left = (WIDTH - face.shape[1]) // 2
    canvas[top : top + face.shape[0], left : left + face.shape[1]] = face
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("cannot encode the test JPEG")
    return bytes(encoded)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Baseline:
    """In-process decode + analyze times (ms): the floor under the HTTP figures."""

    def __init__(self) -> None:
        from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

        self.pipeline = FacePipeline.load()
        self.times_ms: list[float] = []

    def measure(self, jpeg: bytes, count: int) -> None:
        from faced.vision.image_io import decode_for_pipeline  # noqa: PLC0415

        for index in range(count + 10):
            began = time.perf_counter()
            result = self.pipeline.analyze(decode_for_pipeline(jpeg))
            if index >= 10:  # warm-up, as for the servers
                self.times_ms.append((time.perf_counter() - began) * 1000)
            if not result.face_found:
                raise RuntimeError("the benchmark image has no face the pipeline finds")


# --- the server -----------------------------------------------------------------------------


@contextlib.contextmanager
def _config(workers: int, threads: int) -> Iterator[Path]:
    text = (
        f'[auth]\napi_key = "{API_KEY}"\n'
        "[limits]\nrequests_per_s = 1000000.0\nrequest_burst = 1000000\n"
        f"[vision]\nanalyze_workers = {workers}\nthreads = {threads}\n"
        '[logging]\nlevel = "warning"\n'
    )
    with tempfile.TemporaryDirectory(prefix="faced-bench-") as directory:
        path = Path(directory) / "faced.toml"
        path.write_text(text)
        yield path


@contextlib.asynccontextmanager
async def _faced(
    workers: int, threads: int = 1
) -> AsyncIterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    with _config(workers, threads) as config:
        command = [sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--camera", "none", "--config", str(config)]
        async with running_server(command, port, attempts=300) as process:
            yield process, port


# --- the load generator ---------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection posting the image (parsing kept minimal)."""

    def __init__(self, port: int, jpeg: bytes) -> None:
        self.port = port
        self.request = (
            f"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(jpeg)}\r\n\r\n"
        ).encode() + jpeg

    async def __aenter__(self) -> _Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def post(self) -> int:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        start = head.lower().find(b"content-length:")
        length = int(head[start + 15 : head.index(b"\r\n", start)])
        body = await self.reader.readexactly(length)
        status = int(head[9:12])
        if status == 200 and b'"face_found":true' not in body:
            raise RuntimeError("faced found no face in the benchmark image")
        return status


async def latency(port: int, jpeg: bytes, count: int) -> list[float]:
    times = []
    async with _Connection(port, jpeg) as connection:
        for index in range(count + 10):
            began = time.perf_counter()
            status = await connection.post()
            if status != 200:
                raise RuntimeError(f"POST /v1/analyze answered {status}")
            if index >= 10:  # warm-up: first allocations, caches
                times.append((time.perf_counter() - began) * 1000)
    return times


@dataclass
class _Server:
    """One daemon under test and what its throughput rounds added up."""

    workers: int
    port: int
    pid: int
    threads: int = 1
    """vision.threads; the throughput comparison uses only 1-thread daemons."""
    latency_ms: list[float] = field(default_factory=list)
    best_rate: float = 0.0
    requests: int = 0
    busy: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def label(self) -> str:
        workers = f"{self.workers} worker{'s' if self.workers > 1 else ''}"
        return f"POST /v1/analyze, {workers}" + (
            f" x {self.threads} threads" if self.threads > 1 else ""
        )

    def cpu_ms_per_request(self, which: str) -> float:
        cpu = self.server_cpu_s if which == "server" else self.client_cpu_s
        return cpu / self.requests * 1000 if self.requests else math.nan


async def throughput(
    server: _Server, jpeg: bytes, connections: int, seconds: float, *, counted: bool = True
) -> float:
    """Requests/s answered 200 in one round; the round's requests, 503s and the CPU time
    of the server process and of this load generator are added to ``server``."""
    counts = [0, 0]

    async def client(stop_at: float) -> None:
        async with _Connection(server.port, jpeg) as connection:
            while time.monotonic() < stop_at:
                status = await connection.post()
                if status == 200:
                    counts[0] += 1
                elif status == 503:
                    counts[1] += 1
                    await asyncio.sleep(0.001)
                else:
                    raise RuntimeError(f"POST /v1/analyze answered {status}")

    server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
    began = time.monotonic()
    await asyncio.gather(*(client(began + seconds) for _ in range(connections)))
    rate = counts[0] / (time.monotonic() - began)
    if counted:
        server.best_rate = max(server.best_rate, rate)
        server.requests += counts[0]
        server.busy += counts[1]
        server.server_cpu_s += cpu_seconds(server.pid) - server_cpu
        server.client_cpu_s += time.process_time() - client_cpu
    return rate


async def _measure(args: argparse.Namespace, jpeg: bytes, floor: Baseline) -> list[_Server]:
    """Every server runs for the whole measurement (an idle daemon costs no CPU), and the
    latency rounds (with the in-process floor's) and the throughput rounds alternate
    between them, keeping each one's best throughput round: on a shared machine the
    neighbours' load drifts under a long run, and alternating short rounds lets every
    side meet the same drift."""
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        plan = [(workers, 1) for workers in args.workers]
        if args.latency_threads > 1:
            plan.append((1, args.latency_threads))
        for workers, threads in plan:
            process, port = await stack.enter_async_context(_faced(workers, threads))
            servers.append(_Server(workers, port, process.pid, threads))
        per_round = math.ceil(args.requests / args.rounds)
        for _ in range(args.rounds):
            floor.measure(jpeg, per_round)
            for server in servers:
                server.latency_ms += await latency(server.port, jpeg, per_round)
        scaling = [server for server in servers if server.threads == 1]
        for server in scaling:
            await throughput(server, jpeg, _connections(args, server), 0.5, counted=False)
        for _ in range(args.rounds):
            for server in scaling:
                await throughput(server, jpeg, _connections(args, server), args.seconds)
        return servers


def _connections(args: argparse.Namespace, server: _Server) -> int:
    return int(args.connections or 2 * server.workers)


def run(args: argparse.Namespace) -> int:
    for name in ("requests", "rounds", "latency_threads"):
        if getattr(args, name) < 1:
            option = name.replace("_", "-")
            print(f"faced bench analyze: --{option} must be at least 1", file=sys.stderr)
            return 2
    if not args.seconds > 0 or min(args.workers) < 1 or args.connections < 0:
        print(
            "faced bench analyze: --seconds must be positive, --workers at least 1, "
            "--connections at least 0",
            file=sys.stderr,
        )
        return 2
    try:
        jpeg = make_jpeg(args.photo)
    except FileNotFoundError as exc:
        print(f"faced bench analyze: {exc}", file=sys.stderr)
        return 1
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"faced bench analyze: 640x480 JPEG ({len(jpeg)} bytes), {cores} CPU cores, ", end="")
    print(f"load average {load:.2f} before the run")
    try:
        floor = Baseline()
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            servers = runner.run(_measure(args, jpeg, floor))
    except RuntimeError as exc:
        print(f"faced bench analyze: {exc}", file=sys.stderr)
        return 1
    print()
    header = f"{'':42}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'503s':>7}"
    print(f"{header}{'server CPU ms/req':>19}{'client CPU ms/req':>19}")
    floor_p50 = statistics.median(floor.times_ms)
    print(
        f"{'baseline: decode+analyze, no HTTP':42}{floor_p50:9.2f}"
        f"{_percentile(floor.times_ms, 0.99):9.2f}{1000 / floor_p50:9.1f}"
    )
    for server in servers:
        row = f"{server.label:42}{statistics.median(server.latency_ms):9.2f}"
        row += f"{_percentile(server.latency_ms, 0.99):9.2f}"
        if server.threads == 1:
            row += f"{server.best_rate:9.1f}{server.busy:7d}"
            row += f"{server.cpu_ms_per_request('server'):19.2f}"
            row += f"{server.cpu_ms_per_request('client'):19.2f}"
        print(row)
    print()
    for server in servers:
        if server.workers > 1:
            continue
        p50 = statistics.median(server.latency_ms)
        print(
            f"p50 latency, 1 request at a time, {server.label.split(', ', 1)[1]}: "
            f"{p50:.2f} ms (goal <= {P50_GOAL_MS:g} ms)"
            + (
                f"; HTTP + queueing over the in-process floor: {p50 - floor_p50:+.2f} ms"
                if server.threads == 1
                else ""
            )
        )
    scaling = [server for server in servers if server.threads == 1]
    if len(scaling) > 1:
        low = min(scaling, key=lambda server: server.workers)
        high = max(scaling, key=lambda server: server.workers)
        ratio = high.best_rate / low.best_rate if low.best_rate else 0.0
        # With every core busy, req/s cannot pass cores / (CPU per request, server and
        # load generator together): the ceiling this machine puts on the ratio.
        cpu_ms = high.cpu_ms_per_request("server") + high.cpu_ms_per_request("client")
        ceiling = min(high.workers, cores) * 1000 / cpu_ms / low.best_rate if cpu_ms else 0.0
        print(
            f"throughput {high.workers} vs {low.workers} worker(s): {ratio:.2f}x "
            f"(goal >= {SCALING_GOAL:g}x; best of {args.rounds} alternating rounds each; "
            f"{cores} cores shared by the workers, the event loop and this load generator: "
            f"their CPU per request caps it near {ceiling:.2f}x here)"
        )
    print(f"load average after the run: {os.getloadavg()[0]:.2f}")
    return 0
