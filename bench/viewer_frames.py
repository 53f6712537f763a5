"""Frame cost of the viewer page in headless Chromium, beside a baseline page, one run.

Starts ``faced serve`` on a loopback port and Debian's Chromium (tests/browser.py drives it
over the DevTools protocol), then for each case records what the page measures itself over a
few seconds: the JavaScript work per frame (animator update + canvas draw,
``window.faced.stats()``) and the interval between animation frames. The baseline is a page
whose frame only fills the same canvas with one colour — the floor any canvas page pays. An
agent pushes speaking + amplitude at 30 Hz during the "speaking" cases, as lip-sync would.
``--throttle 4`` adds DevTools CPU throttling (4x slower JavaScript), a rough stand-in for a
Raspberry Pi 4's cores.

    .venv/bin/python bench/viewer_frames.py [--seconds 4] [--size 1280x720] [--throttle 1,4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import Browser, find_chromium, launched  # noqa: E402

BASELINE_PAGE = """data:text/html,<!doctype html><html><body style="margin:0">
<canvas id="c" style="display:block;width:100vw;height:100vh"></canvas><script>
const c = document.getElementById("c"), ctx = c.getContext("2d", {alpha: false});
c.width = innerWidth; c.height = innerHeight;
const work = new Float32Array(600), gap = new Float32Array(600); let n = 0, last = 0, t = 0;
function frame(now) { if (last) gap[n % 600] = now - last; last = now;
  const s = performance.now(); t += 0.01;
  ctx.fillStyle = `rgb(${79 + 20 * Math.sin(t) | 0},195,247)`;
  ctx.fillRect(0, 0, c.width, c.height);
  work[n % 600] = performance.now() - s; n++; requestAnimationFrame(frame); }
const pct = (a, k, p) => {
  const v = Array.from(a.subarray(0, Math.min(k, 600))).sort((x, y) => x - y);
  return v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : 0; };
window.faced = { stats: () => ({ frames: n,
  work_p50_ms: pct(work, n, .5), work_p99_ms: pct(work, n, .99),
  interval_p50_ms: pct(gap, n - 1, .5), interval_p99_ms: pct(gap, n - 1, .99) }) };
requestAnimationFrame(frame);
</script></body></html>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_daemon(port: int, state_dir: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FACE_API_KEY", None)
    config = Path(state_dir) / "faced.toml"
    config.write_text(f'[server]\nstate_dir = "{state_dir}"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "faced", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--camera", "none", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/health") as response:
                    if response.status == 200:
                        return process
            await asyncio.sleep(0.05)
    raise SystemExit("faced did not start")


async def lip_sync(base: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as session:
        for i in range(int(seconds * 30)):
            amplitude = round(0.5 + 0.45 * math.sin(i * 0.7), 3)
            await session.post(
                f"{base}/api/state", json={"state": "speaking", "amplitude": amplitude}
            )
            await asyncio.sleep(1 / 30)


async def measure(
    browser: Browser,
    url: str,
    *,
    seconds: float,
    throttle: float,
    base: str | None,
    speaking: bool,
) -> dict[str, Any]:
    page = await browser.page()
    await page.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
    await page.goto(url)
    await page.wait_for("window.faced && window.faced.stats && window.faced.stats().frames > 30")
    if base is not None:
        async with aiohttp.ClientSession() as session:
            state = {"state": "idle", "amplitude": 0}
            await session.post(f"{base}/api/state", json=state)
    await asyncio.sleep(1.0)  # settle (face pack loaded, caches warm)
    before = await page.evaluate("window.faced.stats().frames")
    pushing = asyncio.create_task(lip_sync(base, seconds)) if speaking and base else None
    await asyncio.sleep(seconds)
    stats: dict[str, Any] = await page.evaluate("window.faced.stats()")
    if pushing is not None:
        await pushing
    stats["fps"] = (stats["frames"] - before) / seconds
    await page.send("Page.close")
    return stats


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--throttle", default="1,4", help="CPU throttling rates, comma-separated")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="faced-bench-") as state_dir:
        daemon = await start_daemon(port, state_dir)
        try:
            async with launched(chromium, width, height) as browser:
                print(f"viewer frame cost, {width}x{height}, {args.seconds:g} s per case")
                header = f"{'case':<28} {'cpu':>4} {'fps':>6} {'work p50':>9} {'work p99':>9}"
                print(header + f" {'frame p50':>10} {'frame p99':>10}")
                for throttle in (float(v) for v in args.throttle.split(",")):
                    cases = [
                        ("baseline (canvas fill)", BASELINE_PAGE, None, False),
                        ("viewer default idle", f"{base}/?face=default", base, False),
                        ("viewer default speaking", f"{base}/?face=default", base, True),
                        ("viewer orb speaking", f"{base}/?face=orb", base, True),
                        ("viewer terminal speaking", f"{base}/?face=terminal", base, True),
                    ]
                    for name, url, server, speaking in cases:
                        s = await measure(
                            browser,
                            url,
                            seconds=args.seconds,
                            throttle=throttle,
                            base=server,
                            speaking=speaking,
                        )
                        print(
                            f"{name:<28} {throttle:>3g}x {s['fps']:>6.1f} "
                            f"{s['work_p50_ms']:>7.3f}ms {s['work_p99_ms']:>7.3f}ms "
                            f"{s['interval_p50_ms']:>8.2f}ms {s['interval_p99_ms']:>8.2f}ms"
                        )
        finally:
            daemon.terminate()
            await daemon.wait()


if __name__ == "__main__":
    asyncio.run(main())
