"""`faced bench soak`: the whole daemon under a steady, mixed load for minutes.

Owns: this measurement, its load and its goals. Does not own: the daemon (faced.app, run in
this process on uvloop, as `faced bench live` does, so a probe task measures the event loop
every request and socket waits behind) or the clip and JPEG (`faced bench live`'s inputs).

The load runs in a child process (its Python work does not share the daemon's interpreter
lock): ``--viewers`` raw WebSocket viewers on /ws/viewer, ``--agents`` agent sockets each
sending ``--rate`` state updates a second (each with a new ``detail``), a /ws/tracking
reader, and one /v1/analyze client at ``--analyze-rate`` requests a second; the ``file:``
camera plays a clip of the demo photograph with live tracking on. After ``--warm-up``
seconds (the analyze worker has loaded its models, buffers have grown to their working
size) the goals are judged on the rest of the run:

* resident memory of this process (the daemon; the probe's own state is allocated up
  front) grows by less than 5 %: the median of the last tenth of the samples against the
  median of the first tenth after warm-up;
* event-loop lag p99 ≤ 10 ms (a task that sleeps 5 ms and records how late it wakes);
* every viewer still connected at the end received every broadcast of an agent's update
  (counted on both sides as state messages whose ``detail`` differs from the previous
  one: the camera's own state updates repeat the last detail and are not counted);
* tracking keeps its rate: results per second in the second half after warm-up are at
  least 90 % of the first half's (medians of the sample intervals).

Exit status 1 when a goal is missed; ``--json PATH`` writes every figure (tests read it).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import functools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from faced.bench.server import (
    client_loop_factory,
    cpu_seconds,
    free_port,
    positive,
    take_upgrade,
    ws_frames,
)
from faced.bench.stalls import (
    CpuWait,
    GcPauses,
    histogram_quantile,
    machine_busy_s,
    process_cpu_wait_ns,
)

LAG_GOAL_MS: Final = 10.0
GROWTH_GOAL: Final = 0.05
RATE_GOAL: Final = 0.9
PROBE_INTERVAL_S: Final = 0.005
LAG_BIN_MS: Final = 0.05
LAG_BINS: Final = 40_000  # up to 2 s; later wake-ups land in the last bin
CALM_WAIT_MS_PER_S: Final = 50.0
"""A sample is calm when the loop's thread waited for a CPU less than this per second
(5 %): the machine then seldom took the core away, and the lag is mostly the daemon's own."""
MARK: Final = "soak-"
ANALYZE_TIMEOUT_S: Final = 30.0
_STATE: Final = b'{"type":"state"'
_DETAIL: Final = b'"detail":"'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    number, whole = positive(float), positive(int)
    parser.add_argument("--minutes", type=number, default=10.0, help="whole run (10)")
    parser.add_argument("--warm-up", type=number, default=60.0, help="not judged, s (60)")
    parser.add_argument("--viewers", type=whole, default=100, help="/ws/viewer clients (100)")
    parser.add_argument("--agents", type=whole, default=5, help="/ws/agent clients (5)")
    parser.add_argument("--rate", type=number, default=50.0, help="messages/s per agent (50)")
    parser.add_argument("--analyze-rate", type=number, default=2.0, help="/v1/analyze/s (2)")
    parser.add_argument("--sample-s", type=number, default=10.0, help="RSS sample interval (10)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")


# --- the load, in a child process ------------------------------------------------------------


@dataclass
class _Viewer(asyncio.Protocol):
    """A raw WebSocket viewer: counts state messages that carry a new detail."""

    key: bytes
    ready: asyncio.Future[None]
    buffer: bytearray = field(default_factory=bytearray)
    upgraded: bool = False
    received: int = 0
    last_detail: bytes = b""
    closed: bool = False
    transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(  # type: ignore[attr-defined]
            b"GET /ws/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + self.key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("viewer connection lost before the upgrade"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            self.upgraded = take_upgrade(self.buffer, self.ready)
            if not self.upgraded:
                return
        for opcode, payload in ws_frames(self.buffer):
            if opcode == 0x8:
                self.closed = True  # the daemon closed it (e.g. too slow)
            elif opcode == 0x9 and len(payload) < 126:
                # The daemon's heartbeat: a viewer that does not answer is closed. Client
                # frames are masked; a zero mask leaves the payload as it is.
                self.transport.write(bytes((0x8A, 0x80 | len(payload))) + bytes(4) + payload)
            elif payload.startswith(_STATE):
                self._state(payload)

    def _state(self, payload: bytes) -> None:
        mark = payload.find(_DETAIL)
        if mark < 0:
            return
        start = mark + len(_DETAIL)
        detail = payload[start : payload.index(b'"', start)]
        if detail.startswith(MARK.encode()) and detail != self.last_detail:
            self.last_detail = detail
            self.received += 1


def _same(viewer: _Viewer) -> _Viewer:
    return viewer


def _load_main(url: str, settings: str, jpeg_path: str) -> None:
    """Entry of the load process: prints ``ready`` once the viewers are in, then one JSON
    line of counts when done."""
    options = json.loads(settings)
    jpeg = Path(jpeg_path).read_bytes()
    factory = client_loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(_load(url, options, jpeg))
    print(json.dumps(result), flush=True)


async def _load(url: str, options: dict[str, Any], jpeg: bytes) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415

    analyze_timeout = aiohttp.ClientTimeout(total=ANALYZE_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    port = int(url.rsplit(":", 1)[1])
    viewers: list[_Viewer] = []
    transports = []
    for number in range(options["viewers"]):
        key = base64.b64encode(number.to_bytes(16, "big"))
        viewer = _Viewer(key, loop.create_future())
        transport, _ = await loop.create_connection(
            functools.partial(_same, viewer), "127.0.0.1", port
        )
        transports.append(transport)
        async with asyncio.timeout(10):
            await viewer.ready
        viewers.append(viewer)
    async with aiohttp.ClientSession() as session:
        # One analyze first: the worker loads its models before the clock starts.
        form = aiohttp.FormData()
        form.add_field("image", jpeg, filename="frame.jpg", content_type="image/jpeg")
        async with session.post(f"{url}/v1/analyze", data=form) as response:
            await response.read()
    await asyncio.sleep(0.5)  # greetings delivered
    print("ready", flush=True)
    seconds: float = options["seconds"]
    deadline = time.monotonic() + seconds
    counts = {"sent": 0, "agent_errors": 0, "analyzed": 0, "analyze_errors": 0, "results": 0}

    async def agent(session: aiohttp.ClientSession, number: int) -> None:
        interval = 1.0 / options["rate"]
        async with session.ws_connect(f"{url}/ws/agent") as ws:

            async def replies() -> None:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT and '"error"' in message.data:
                        counts["agent_errors"] += 1

            reader = asyncio.create_task(replies())
            start, index = time.monotonic(), 0
            while time.monotonic() < deadline:
                delay = start + index * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                amplitude = (index % 10) / 10
                await ws.send_str(f'{{"detail":"{MARK}{number}-{index}","amplitude":{amplitude}}}')
                counts["sent"] += 1
                index += 1
            await asyncio.sleep(0.5)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def analyze(session: aiohttp.ClientSession) -> None:
        interval = 1.0 / options["analyze_rate"]
        while (now := time.monotonic()) < deadline:
            form = aiohttp.FormData()
            form.add_field("image", jpeg, filename="frame.jpg", content_type="image/jpeg")
            try:
                async with session.post(
                    f"{url}/v1/analyze", data=form, timeout=analyze_timeout
                ) as response:
                    await response.read()
                    counts["analyzed" if response.status == 200 else "analyze_errors"] += 1
            except (aiohttp.ClientError, TimeoutError):
                counts["analyze_errors"] += 1  # a starved daemon: counted, the soak goes on
            await asyncio.sleep(max(0.0, now + interval - time.monotonic()))

    async def track(session: aiohttp.ClientSession) -> None:
        async with session.ws_connect(f"{url}/ws/tracking?fields=head") as ws:
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
                    counts["results"] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(
            track(session),
            analyze(session),
            *(agent(session, number) for number in range(options["agents"])),
        )
    await asyncio.sleep(2.0)  # the last broadcasts reach every viewer
    outcome = {
        **counts,
        "received": [viewer.received for viewer in viewers],
        "healthy": [not viewer.closed for viewer in viewers],
    }
    for transport in transports:
        transport.close()
    return outcome


# --- the daemon and its probe ----------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    rss_mib: float
    anon_mib: float
    threads: int
    tracking_per_s: float
    lag_p99_ms: float
    lag_max_ms: float
    loop_cpu_wait_ms_per_s: float
    """How long the loop's thread was runnable with no CPU, per second of the sample."""
    process_cpu_wait_ms_per_s: float
    """The same summed over the daemon's threads (tracking, capture, the pool's)."""
    gc_ms: float
    """Time in collections during the sample, any thread's."""
    others_cores: float
    """CPUs' worth the rest of the machine used (neither the daemon nor the load)."""


@dataclass
class Result:
    seconds: float
    warm_up_s: float
    viewers: int
    agents: int
    rate: float
    samples: list[Sample] = field(default_factory=list)
    rss_start_mib: float = 0.0
    rss_end_mib: float = 0.0
    growth: float = 0.0
    lag_p50_ms: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0
    own_lag_p99_ms: float = 0.0
    """p99 of each probe's lag less the time the loop's thread waited for a CPU in it."""
    calm_lag_p99_ms: float = 0.0
    """p99 over the probes of the calm samples only (see CALM_WAIT_MS_PER_S)."""
    calm_samples: int = 0
    judged_samples: int = 0
    cpu_wait_available: bool = False
    gc: dict[str, Any] = field(default_factory=dict)
    broadcasts: int = 0
    healthy: int = 0
    lost: int = 0
    sent: int = 0
    agent_errors: int = 0
    slow_disconnects: int = 0
    tracking_first_per_s: float = 0.0
    tracking_second_per_s: float = 0.0
    tracking_ratio: float = 0.0
    analyzed: int = 0
    analyze_errors: int = 0
    cpu_s: float = 0.0
    load_start: float = 0.0
    load_end: float = 0.0
    goals: dict[str, bool] = field(default_factory=dict)


def _memory() -> tuple[float, float, int]:
    fields: dict[str, int] = {}
    # procfs, read from the event loop: no disk behind it, microseconds.
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "Threads"):
                fields[key] = int(value.split()[0])
    return fields["VmRSS"] / 1024, fields["RssAnon"] / 1024, fields["Threads"]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _soak(args: argparse.Namespace, clip: Path, jpeg: Path) -> Result:
    from aiohttp import web  # noqa: PLC0415

    from faced.app import create_app  # noqa: PLC0415
    from faced.config import validate  # noqa: PLC0415
    from faced.keys import LIVE_KEY, OPENFACE_KEY  # noqa: PLC0415
    from faced.schemas.face_state import StateMessage  # noqa: PLC0415

    seconds = args.minutes * 60
    port = free_port()
    config = validate(
        {
            "server": {"host": "127.0.0.1", "port": port},
            "camera": {"source": f"file:{clip}"},
            "vision": {"analyze_workers": 1},
            # One client address carries all the load: no limit may refuse it; the agents'
            # own rate limit stays above --rate so jitter in their clocks is not refused.
            "limits": {
                "requests_per_s": 1e6,
                "request_burst": 1_000_000,
                "max_viewers": args.viewers,
                "max_agents": args.agents,
                "agent_messages_per_s": max(60.0, args.rate * 1.5),
            },
        },
        "bench",
    )
    result = Result(seconds, args.warm_up, args.viewers, args.agents, args.rate)
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    hub = runner.app[OPENFACE_KEY].hub
    last_detail: list[str | None] = [None]
    tracked = [0]

    def on_broadcast(message: Any) -> None:
        if isinstance(message, StateMessage):
            detail = message.detail
            if detail and detail.startswith(MARK) and detail != last_detail[0]:
                last_detail[0] = detail
                result.broadcasts += 1

    def on_result(_result: Any) -> None:
        tracked[0] += 1

    hub.observers.append(on_broadcast)
    pauses = GcPauses()
    pauses.start()
    live = runner.app[LIVE_KEY].live
    if live is not None:
        live.listeners.append(on_result)
    slow_before = hub.slow_disconnects
    settings = {
        "viewers": args.viewers,
        "agents": args.agents,
        "rate": args.rate,
        "analyze_rate": args.analyze_rate,
        "seconds": seconds,
    }
    code = "import sys; from faced.bench.soak import _load_main; _load_main(*sys.argv[1:])"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        f"http://127.0.0.1:{port}",
        json.dumps(settings),
        str(jpeg),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        async with asyncio.timeout(120):
            line = await child.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError("the load process did not connect its viewers")
        histogram, own, calm = (array.array("L", bytes(8 * LAG_BINS)) for _ in range(3))
        cpu_before, result.load_start = cpu_seconds(os.getpid()), os.getloadavg()[0]
        window: list[float] = []
        cpu_wait = CpuWait()  # this thread's: the event loop's
        result.cpu_wait_available = cpu_wait.available
        pauses.measuring = args.warm_up == 0
        started = time.perf_counter()
        next_sample, last_tracked, last_sampled = started + args.sample_s, 0, started
        loop_waited, process_waited = cpu_wait.ns(), process_cpu_wait_ns()
        ours = [os.getpid(), child.pid]
        machine_before, ours_before = machine_busy_s(), sum(map(cpu_seconds, ours))
        while (now := time.perf_counter()) < started + seconds:
            waited_before = cpu_wait.ns()
            await asyncio.sleep(PROBE_INTERVAL_S)
            lag_ms = max(0.0, (time.perf_counter() - now - PROBE_INTERVAL_S) * 1000)
            waited_ms = (cpu_wait.ns() - waited_before) / 1e6
            window.append(lag_ms)
            judged = now - started >= args.warm_up
            if judged:
                pauses.measuring = True
                histogram[min(LAG_BINS - 1, int(lag_ms / LAG_BIN_MS))] += 1
                own_ms = max(0.0, lag_ms - waited_ms)
                own[min(LAG_BINS - 1, int(own_ms / LAG_BIN_MS))] += 1
                result.lag_max_ms = max(result.lag_max_ms, lag_ms)
            if now >= next_sample:
                # Rates over the interval that really passed, read after the probe's sleep:
                # when that sleep stalled for seconds, the counters already hold the stall.
                sampled = time.perf_counter()
                rss, anon, threads = _memory()
                interval = sampled - last_sampled
                rate = (tracked[0] - last_tracked) / interval
                last_tracked, last_sampled = tracked[0], sampled
                loop_now, process_now = cpu_wait.ns(), process_cpu_wait_ns()
                loop_wait = (loop_now - loop_waited) / 1e6 / interval
                process_wait = (process_now - process_waited) / 1e6 / interval
                loop_waited, process_waited = loop_now, process_now
                machine_now, ours_now = machine_busy_s(), sum(map(cpu_seconds, ours))
                others = (machine_now - machine_before - (ours_now - ours_before)) / interval
                machine_before, ours_before = machine_now, ours_now
                result.samples.append(
                    Sample(
                        round(sampled - started, 1),
                        rss,
                        anon,
                        threads,
                        rate,
                        _quantile(window, 0.99),
                        max(window),
                        round(loop_wait, 2),
                        round(max(0.0, process_wait), 2),  # a thread that ended: < 0
                        round(pauses.interval_ms, 2),
                        round(max(0.0, others), 2),  # clock ticks: ±0.01 s per reading
                    )
                )
                pauses.interval_ms = 0.0
                if judged and cpu_wait.available:
                    result.judged_samples += 1
                    if loop_wait < CALM_WAIT_MS_PER_S:
                        result.calm_samples += 1
                        for lag in window:
                            calm[min(LAG_BINS - 1, int(lag / LAG_BIN_MS))] += 1
                window.clear()
                next_sample = sampled + args.sample_s  # after a stall: no burst of samples
        cpu_wait.close()
        async with asyncio.timeout(120):
            output, _ = await child.communicate()
    finally:
        pauses.stop()
        if child.returncode is None:
            child.kill()
            await child.wait()
    if child.returncode != 0 or not output.strip():
        raise RuntimeError(f"the load process failed (exit status {child.returncode})")
    counts = json.loads(output.splitlines()[-1])
    result.cpu_s = cpu_seconds(os.getpid()) - cpu_before
    result.load_end = os.getloadavg()[0]
    result.slow_disconnects = hub.slow_disconnects - slow_before
    await runner.cleanup()
    result.lag_p50_ms = histogram_quantile(histogram, LAG_BIN_MS, 0.50)
    result.lag_p99_ms = histogram_quantile(histogram, LAG_BIN_MS, 0.99)
    result.own_lag_p99_ms = histogram_quantile(own, LAG_BIN_MS, 0.99)
    result.calm_lag_p99_ms = histogram_quantile(calm, LAG_BIN_MS, 0.99)
    result.gc = pauses.summary()
    _judge(result, counts)
    return result


def _judge(result: Result, counts: dict[str, Any]) -> None:
    healthy = [n for n, ok in zip(counts["received"], counts["healthy"], strict=True) if ok]
    result.healthy = len(healthy)
    result.lost = sum(max(0, result.broadcasts - n) for n in healthy)
    result.sent, result.agent_errors = counts["sent"], counts["agent_errors"]
    result.analyzed, result.analyze_errors = counts["analyzed"], counts["analyze_errors"]
    after = [s for s in result.samples if s.t_s > result.warm_up_s]
    if after:
        k = max(1, len(after) // 10)
        result.rss_start_mib = statistics.median(s.rss_mib for s in after[:k])
        result.rss_end_mib = statistics.median(s.rss_mib for s in after[-k:])
        result.growth = result.rss_end_mib / result.rss_start_mib - 1
        half = max(1, len(after) // 2)
        first = [s.tracking_per_s for s in after[:half]]
        second = [s.tracking_per_s for s in after[half:]] or first
        result.tracking_first_per_s = statistics.median(first)
        result.tracking_second_per_s = statistics.median(second)
        if result.tracking_first_per_s:
            result.tracking_ratio = result.tracking_second_per_s / result.tracking_first_per_s
    result.goals = {
        "rss_growth": bool(after) and result.growth < GROWTH_GOAL,
        "lag_p99": result.lag_p99_ms <= LAG_GOAL_MS,
        "nothing_lost": result.lost == 0 and result.healthy > 0 and result.broadcasts > 0,
        "tracking_rate": result.tracking_ratio >= RATE_GOAL,
    }


def _report(result: Result, args: argparse.Namespace) -> None:
    print(f"{'t s':>7}{'RSS MiB':>9}{'anon MiB':>9}{'threads':>8}{'tracking/s':>11}", end="")
    print(f"{'lag p99 ms':>11}{'max ms':>9}{'CPU wait ms/s':>14}{'(all threads)':>14}", end="")
    print(f"{'GC ms':>7}{'others CPUs':>12}")
    for s in result.samples:
        mark = " " if s.t_s > result.warm_up_s else "w"  # w: warm-up, not judged
        print(
            f"{s.t_s:6.0f}{mark}{s.rss_mib:9.1f}{s.anon_mib:9.1f}{s.threads:8d}"
            f"{s.tracking_per_s:11.1f}{s.lag_p99_ms:11.2f}{s.lag_max_ms:9.1f}"
            f"{s.loop_cpu_wait_ms_per_s:14.1f}{s.process_cpu_wait_ms_per_s:14.1f}{s.gc_ms:7.1f}"
            f"{s.others_cores:12.2f}"
        )
    goals = result.goals

    def verdict(name: str) -> str:
        return "met" if goals[name] else "NOT met"

    print()
    print(
        f"RSS after warm-up {result.rss_start_mib:.1f} MiB, at the end {result.rss_end_mib:.1f} "
        f"MiB: growth {result.growth:+.1%} (goal < {GROWTH_GOAL:.0%}): {verdict('rss_growth')}"
    )
    print(
        f"event-loop lag after warm-up: p50 {result.lag_p50_ms:.2f} ms, p99 "
        f"{result.lag_p99_ms:.2f} ms, max {result.lag_max_ms:.1f} ms "
        f"(goal p99 <= {LAG_GOAL_MS:g} ms): {verdict('lag_p99')}"
    )
    if result.cpu_wait_available:
        print(
            f"  the machine's share taken out (not judged): p99 {result.own_lag_p99_ms:.2f} ms "
            f"of each probe's lag less the time the loop's thread waited for a CPU in it; "
            f"p99 {result.calm_lag_p99_ms:.2f} ms over the {result.calm_samples} of "
            f"{result.judged_samples} samples in which it waited < "
            f"{CALM_WAIT_MS_PER_S:g} ms/s (CPU wait: schedstat's run delay)"
        )
    else:
        print("  (no /proc/thread-self/schedstat: the machine's share cannot be told apart)")
    for number, generation in enumerate(result.gc.get("generations", [])):
        print(
            f"  GC generation {number}: {generation['count']:,} collections "
            f"({generation['on_loop_thread']:,} on the loop's thread), p50 "
            f"{generation['p50_ms']:.2f} ms, p99 {generation['p99_ms']:.2f} ms, max "
            f"{generation['max_ms']:.1f} ms (the most CPU one used: "
            f"{generation['max_cpu_ms']:.1f} ms), {generation['total_ms']:.0f} ms in all"
        )
    print(
        f"broadcasts: {result.broadcasts:,} agent updates ({result.sent:,} sent, "
        f"{result.agent_errors} refused); {result.healthy}/{result.viewers} viewers healthy "
        f"({result.slow_disconnects} disconnected as too slow); messages lost by healthy "
        f"viewers: {result.lost:,} (goal 0): {verdict('nothing_lost')}"
    )
    print(
        f"tracking: {result.tracking_first_per_s:.1f} results/s in the first half after "
        f"warm-up, {result.tracking_second_per_s:.1f} in the second: "
        f"{result.tracking_ratio:.0%} (goal >= {RATE_GOAL:.0%}): {verdict('tracking_rate')}"
    )
    print(f"analyze: {result.analyzed} answered, {result.analyze_errors} errors or timeouts")
    print(
        f"the daemon's process used {result.cpu_s:.0f} s of CPU in {result.seconds:.0f} s "
        f"({result.cpu_s / result.seconds:.0%} of a core); load average "
        f"{result.load_start:.1f} at the start, {result.load_end:.1f} at the end"
    )
    print("goals met" if all(goals.values()) else "goals NOT met")


def run(args: argparse.Namespace) -> int:
    if not Path("/proc/self/status").is_file():
        print("faced bench soak: needs Linux's /proc", file=sys.stderr)
        return 2
    if args.warm_up >= args.minutes * 60:
        print("faced bench soak: --warm-up must be shorter than the run", file=sys.stderr)
        return 2
    from faced.bench.live import _inputs  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faced").setLevel(logging.ERROR)  # slow viewers are counted, not logged
    print(
        f"faced bench soak: {args.minutes:g} min ({args.warm_up:g} s warm-up), {args.viewers} "
        f"viewers, {args.agents} agents x {args.rate:g} msg/s, tracking on a file camera, "
        f"analyze {args.analyze_rate:g}/s; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}; {sys.executable}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="faced-bench-soak-") as scratch:
        clip, jpeg = _inputs(Path(scratch))
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            try:
                result = runner.run(_soak(args, clip, jpeg))
            except (RuntimeError, OSError, TimeoutError) as exc:
                print(f"faced bench soak: {exc}", file=sys.stderr)
                return 1
    _report(result, args)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(result), indent=1) + "\n")
    return 0 if all(result.goals.values()) else 1
