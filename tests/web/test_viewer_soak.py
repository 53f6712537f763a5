"""Many Open Face viewer pages in one headless Chromium against one daemon: none falls behind.

The very same test is the short run of `make test` (20 pages, 15 s of updates) and the long one of
`make soak` (50 pages, 5 minutes, FACED_LONG_RUNS=1). An agent socket sends a state update
with a numbered ``detail`` ten times a second; every few seconds each page's last applied
detail (the viewer's own ``animator.target``) is read beside the daemon's, and the daemon's
resident memory is sampled from /proc. Asserted: every page is still connected and catches up
with the daemon's last update once the agent stops, no page logged an error, and RSS stays
flat (the growth bound of `faced bench soak`). How far pages trailed while updates kept coming
is printed, not asserted: reading 50 pages over the DevTools protocol takes longer than the
updates take to arrive, so that figure measures the probe as much as the pages.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.bench import soak
from tests.browser import Browser, Page
from tests.helpers import run_seconds

SECONDS = run_seconds(15, 300)
LONG = SECONDS > 60
PAGES = 50 if LONG else 20
RATE = 10.0
CHECK_S = 10.0 if LONG else 4.0
GROWTH_BOUND = soak.GROWTH_GOAL if LONG else 2 * soak.GROWTH_GOAL
CONFIG = f"""
[limits]
max_viewers = {PAGES + 10}
"""

pytestmark = [
    pytest.mark.soak,
    pytest.mark.serial,
    pytest.mark.slow,
    pytest.mark.timeout(SECONDS + 240),
]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def _shown(page: Page) -> int:
    """The number in the last ``detail`` the page applied (-1 before the first)."""
    detail = await page.evaluate(
        "document.documentElement.dataset.connection === 'open' ? "
        "(window.faced.animator.target.detail ?? 'closed') : 'closed'"
    )
    assert detail != "closed", "a viewer page lost its connection"
    return int(detail.rsplit("-", 1)[1]) if detail and detail.startswith("pages-") else -1


async def test_viewer_pages_keep_up(run_faced: Any, browser: Browser) -> None:
    faced = await run_faced(config_text=CONFIG)
    began = time.monotonic()
    pages = [await browser.page() for _ in range(PAGES)]
    # Loaded ten at a time, each with a minute: 50 at once outrun a page load's 15 s on a
    # loaded machine.
    for first in range(0, PAGES, 10):
        await asyncio.gather(
            *(page.goto(f"{faced.url}/?audio=off", 60) for page in pages[first : first + 10])
        )
    await asyncio.gather(
        *(
            page.wait_for(
                "document.documentElement.dataset.connection === 'open'",
                seconds=60,
                what="viewer connected",
            )
            for page in pages
        )
    )
    opened = time.monotonic()
    sent = -1
    behind: list[int] = []
    rss: list[float] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{faced.url}/ws/agent") as agent,
    ):
        start = time.monotonic()
        next_check = start + CHECK_S
        while (now := time.monotonic()) < start + SECONDS:
            sent += 1
            await agent.send_str(f'{{"detail":"pages-{sent}"}}')
            if now >= next_check:
                daemon_last = sent
                shown = await asyncio.gather(*(_shown(page) for page in pages))
                behind.append(max(daemon_last - n for n in shown))
                rss.append(await asyncio.to_thread(_rss_mib, faced.process.pid))
                next_check += CHECK_S
            await asyncio.sleep(max(0.0, start + (sent + 1) / RATE - time.monotonic()))
        last = sent
        # Every page catches up with the daemon's last update (generous: a loaded machine).
        deadline = time.monotonic() + 15
        while await asyncio.gather(*(_shown(page) for page in pages)) != [last] * PAGES:
            assert time.monotonic() < deadline, "a viewer page fell behind and never caught up"
            await asyncio.sleep(0.2)
        rss.append(await asyncio.to_thread(_rss_mib, faced.process.pid))
    errors = {index: page.errors for index, page in enumerate(pages) if page.errors}
    assert not errors, errors
    growth = rss[-1] / statistics.median(rss[: max(1, len(rss) // 4)]) - 1
    print(
        f"{PAGES} pages (opened in {opened - began:.1f} s), {last + 1} updates in "
        f"{SECONDS:g} s: every page caught up; "
        f"most behind while sending: {max(behind, default=0)} updates; daemon RSS "
        f"{rss[0]:.1f} -> {rss[-1]:.1f} MiB ({growth:+.1%})"
    )
    assert growth < GROWTH_BOUND, rss
