"""`faced bench live`: capture → publish latency and event-loop lag while the box tracks.

Owns: this measurement and its probe. Does not own: the tracking it measures (faced.live)
or the clip (faced.vision.synthetic). One run, three phases of the real daemon (faced.app, in
this process on uvloop, so a probe task can measure its own event loop), each with the
same probe: a task that sleeps ``PROBE_INTERVAL_S`` and records how late it wakes up —
the event-loop lag every request and socket in the daemon waits behind.

1. **idle** — no camera, no load: the baseline lag of the bare daemon on this machine;
2. **tracking** — the ``file:`` source (a 640×480 clip of the demo photograph, 30 fps) with
   a /ws/tracking client: capture → publish latency p50/p99 (``latency_ms`` of every
   result), beside the pipeline's own time per frame (``timing_ms.total``), and lag;
3. **tracking + analyze** — the same, while ``--clients`` clients POST a 640×480 JPEG to
   /v1/analyze back to back (full load on the analyze workers): lag p99 (goal ≤ 10 ms),
   capture → publish, and analyze requests/s;
4. **tracking + job** — phase 2 while a job (faced.jobs: a clip of up to 30 s uploaded before the
   phase) runs in its lower-priority thread the whole time: tracking's frame rate and the
   lag beside phase 2's, in the same run.

The load (HTTP clients, the socket reader) runs in a child process, so its Python work
does not share this process's interpreter lock; the daemon's own threads (capture,
tracking, analyze workers) run here, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from faced.bench.server import client_loop_factory, free_port, positive

LAG_GOAL_MS: Final = 10.0
PROBE_INTERVAL_S: Final = 0.005
WARM_UP_S: Final = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seconds", type=positive(float), default=5.0, help="length of each phase (5)"
    )
    parser.add_argument(
        "--clients",
        type=positive(int),
        default=4,
        help="concurrent /v1/analyze clients in phase 3 (4)",
    )
    parser.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        help="analyze workers (vision.analyze_workers, 1)",
    )


@dataclass
class Phase:
    name: str
    lags_ms: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    pipeline_ms: list[float] = field(default_factory=list)
    analyzed: int = 0
    analyze_errors: int = 0
    socket_results: int = 0
    seconds: float = 0.0
    job_ran: bool | None = None
    """Phase 4: whether a job was running from the start to the end of the measurement."""

    @property
    def fps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def _inputs(directory: Path, seconds: float = 0.0) -> tuple[Path, Path]:
    """The clip the file source plays and a JPEG for /v1/analyze, both from the demo photo;
    with ``seconds`` (a phase's length), also the job phase's take (job.avi)."""
    import cv2  # noqa: PLC0415

    from faced.devices.demo_photo import photo_path, read_verified  # noqa: PLC0415
    from faced.vision.models import default_model_dir  # noqa: PLC0415
    from faced.vision.synthetic import load_photo, render_frame, write_clip  # noqa: PLC0415

    model_dir = default_model_dir()
    read_verified(model_dir)  # the right photograph, or the command that fetches it
    rgb = load_photo(photo_path(model_dir))
    clip = write_clip(rgb, directory / "live.avi", 90)
    # Phase 4's take: long enough to outlast the phase (the job runs faster than real time).
    if seconds > 0:
        write_clip(rgb, directory / "job.avi", max(150, min(900, round(180 * seconds))))
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(render_frame(rgb, 17), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cannot encode the analyze JPEG")
    jpeg_path = directory / "frame.jpg"
    jpeg_path.write_bytes(bytes(jpeg))
    return clip, jpeg_path


# --- the load, in a child process ------------------------------------------------------------


def _load_main(url: str, seconds: str, clients: str, jpeg_path: str) -> None:
    """Entry of the load process: prints ``analyzed errors results`` when done."""
    jpeg = Path(jpeg_path).read_bytes() if jpeg_path else b""
    analyzed, errors, results = asyncio.run(_load(url, float(seconds), int(clients), jpeg))
    print(analyzed, errors, results, flush=True)


async def _load(url: str, seconds: float, clients: int, jpeg: bytes) -> tuple[int, int, int]:
    import aiohttp  # noqa: PLC0415

    deadline = time.monotonic() + seconds
    analyzed = errors = results = 0

    async def analyze(session: aiohttp.ClientSession) -> None:
        nonlocal analyzed, errors
        while time.monotonic() < deadline:
            form = aiohttp.FormData()
            form.add_field("image", jpeg, filename="frame.jpg", content_type="image/jpeg")
            async with session.post(f"{url}/v1/analyze", data=form) as response:
                await response.read()
                if response.status == 200:
                    analyzed += 1
                else:
                    errors += 1

    async def track(session: aiohttp.ClientSession) -> None:
        nonlocal results
        async with session.ws_connect(f"{url}/ws/tracking?fields=head") as ws:
            while time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
                    results += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(track(session), *(analyze(session) for _ in range(clients)))
    return analyzed, errors, results


async def _start_load(
    url: str, seconds: float, clients: int, jpeg_path: str
) -> asyncio.subprocess.Process:
    code = "import sys; from faced.bench.live import _load_main; _load_main(*sys.argv[1:])"
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        url,
        str(seconds),
        str(clients),
        jpeg_path,
        stdout=asyncio.subprocess.PIPE,
    )


# --- one phase of the daemon ---------------------------------------------------------------


async def _submit_jobs(url: str, clip: Path, count: int) -> None:
    """Upload ``clip`` as ``count`` jobs (before the measurement: the upload is loop work)."""
    import io  # noqa: PLC0415

    import aiohttp  # noqa: PLC0415

    body = await asyncio.to_thread(clip.read_bytes)
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            async with session.post(
                f"{url}/api/v1/jobs",
                data=io.BytesIO(body),  # streamed: a 3 MB body must not hold the loop
                headers={"Content-Type": "video/avi"},
            ) as response:
                if response.status != 202:
                    raise RuntimeError(f"job refused: {response.status} {await response.text()}")


async def _phase(
    name: str,
    sections: dict[str, Any],
    seconds: float,
    load: tuple[int, str] | None,
    job_clip: Path | None = None,
) -> Phase:
    from aiohttp import web  # noqa: PLC0415

    from faced.app import create_app  # noqa: PLC0415
    from faced.config import validate  # noqa: PLC0415
    from faced.keys import JOBS_KEY, LIVE_KEY  # noqa: PLC0415
    from faced.schemas.tracking import TrackingResult  # noqa: PLC0415

    port = free_port()
    config = validate(
        {
            # The load is one client address: no rate limit may refuse it.
            "limits": {"requests_per_s": 1e6, "request_burst": 1_000_000},
            **sections,
            "server": {**sections.get("server", {}), "host": "127.0.0.1", "port": port},
        },
        "bench",
    )
    phase = Phase(name)
    runner = web.AppRunner(create_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    service = runner.app[LIVE_KEY]
    measuring = False

    def on_result(result: TrackingResult) -> None:
        if measuring:
            phase.latencies_ms.append(result.latency_ms)
            phase.pipeline_ms.append(result.timing_ms.total)

    if service.live is not None:
        service.live.listeners.append(on_result)

    child: asyncio.subprocess.Process | None = None
    if load is not None or service.live is not None:
        # Tracking alone still has its /ws/tracking reader; phase 3 adds the analyze clients.
        clients, jpeg_path = load or (0, "")
        url = f"http://127.0.0.1:{port}"
        child = await _start_load(url, seconds + WARM_UP_S, clients, jpeg_path)

    jobs = runner.app[JOBS_KEY]
    if job_clip is not None:
        await _submit_jobs(f"http://127.0.0.1:{port}", job_clip, 2)
    await asyncio.sleep(WARM_UP_S)
    running_at_start = jobs.report().get("running") is True
    measuring = True
    started = time.perf_counter()
    end = started + seconds
    while (now := time.perf_counter()) < end:
        await asyncio.sleep(PROBE_INTERVAL_S)
        phase.lags_ms.append(max(0.0, (time.perf_counter() - now - PROBE_INTERVAL_S) * 1000))
    measuring = False
    phase.seconds = time.perf_counter() - started
    if job_clip is not None:
        phase.job_ran = running_at_start and jobs.report().get("running") is True
    if child is not None:
        output, _ = await asyncio.wait_for(child.communicate(), 60)
        analyzed, errors, results = (int(n) for n in output.split())
        phase.analyzed, phase.analyze_errors, phase.socket_results = analyzed, errors, results
    await runner.cleanup()
    return phase


def _ms(value: float) -> str:
    return f"{value:8.2f}"


def _report(phases: list[Phase], args: argparse.Namespace) -> int:
    probe_ms = PROBE_INTERVAL_S * 1000
    print(f"faced bench live: {args.seconds:g} s per phase, loop probe every {probe_ms:g} ms")
    print()
    print(
        f"{'phase':<22}{'loop lag p50':>14}{'p99':>9}{'max':>9}   capture→publish p50    p99"
        "   pipeline/frame p50   analyze req/s   tracking fps"
    )
    for phase in phases:
        latency = (
            f"{_ms(_percentile(phase.latencies_ms, 50))}{_ms(_percentile(phase.latencies_ms, 99))}"
            if phase.latencies_ms
            else f"{'-':>8}{'-':>8}"
        )
        pipeline = _ms(_percentile(phase.pipeline_ms, 50)) if phase.pipeline_ms else f"{'-':>8}"
        rate = (
            f"{phase.analyzed / (args.seconds + WARM_UP_S):8.1f}" if phase.analyzed else f"{'-':>8}"
        )
        print(
            f"{phase.name:<22}{_ms(_percentile(phase.lags_ms, 50)):>14}"
            f"{_ms(_percentile(phase.lags_ms, 99)):>9}{_ms(max(phase.lags_ms)):>9}"
            f"   {latency}            {pipeline}          {rate}"
            f"       {phase.fps:6.1f}"
            + ("" if phase.job_ran is not False else "  (job ended early)")
        )
    loaded = phases[2]
    p99 = _percentile(loaded.lags_ms, 99)
    print()
    print(
        f"event-loop lag p99 under tracking + analyze: {p99:.2f} ms "
        f"(goal <= {LAG_GOAL_MS:g} ms: {'met' if p99 <= LAG_GOAL_MS else 'NOT met'}); "
        f"idle baseline p99 {_percentile(phases[0].lags_ms, 99):.2f} ms"
    )
    tracked = phases[1]
    print(
        f"capture -> publish (file source, tracking only): p50 "
        f"{_percentile(tracked.latencies_ms, 50):.2f} ms, p99 "
        f"{_percentile(tracked.latencies_ms, 99):.2f} ms over {len(tracked.latencies_ms)} "
        f"results; the pipeline alone p50 {_percentile(tracked.pipeline_ms, 50):.2f} ms/frame"
    )
    with_job = phases[3]
    print(
        f"while a job runs: tracking {with_job.fps:.1f} fps (without: {tracked.fps:.1f}), "
        f"loop lag p99 {_percentile(with_job.lags_ms, 99):.2f} ms "
        f"(without: {_percentile(tracked.lags_ms, 99):.2f} ms), capture -> publish p50 "
        f"{_percentile(with_job.latencies_ms, 50):.2f} ms "
        f"(without: {_percentile(tracked.latencies_ms, 50):.2f} ms)"
    )
    if loaded.analyze_errors:
        print(f"note: {loaded.analyze_errors} analyze requests failed", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faced").setLevel(logging.WARNING)
    loop_factory = client_loop_factory()
    with tempfile.TemporaryDirectory(prefix="faced-bench-live-") as scratch:
        clip, jpeg = _inputs(Path(scratch), args.seconds)
        camera = {"source": f"file:{clip}"}
        vision = {"analyze_workers": args.workers}
        state = {"state_dir": str(Path(scratch) / "state")}
        tracking = {"camera": camera, "vision": vision, "server": state}
        job_clip = Path(scratch) / "job.avi"
        plan: list[tuple[str, dict[str, Any], tuple[int, str] | None, Path | None]] = [
            ("idle (baseline)", {"vision": vision, "server": state}, None, None),
            ("tracking", tracking, None, None),
            ("tracking + analyze", tracking, (args.clients, str(jpeg)), None),
            ("tracking + job", tracking, None, job_clip),
        ]
        phases = []
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            for name, sections, load, jobs in plan:
                phases.append(runner.run(_phase(name, sections, args.seconds, load, jobs)))
    return _report(phases, args)
