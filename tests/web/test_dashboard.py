"""The dashboard in a real headless Chromium against the real daemon on loopback: its
controls change the server's state, errors (auth, missing gateway) are shown plainly, and
the tracking and system panels report what the daemon has."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.synthetic import write_clip
from tests import data
from tests.browser import Browser, Page

pytestmark = pytest.mark.slow

KEY = "dashboard-test-key"


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (1280, 1000)


@pytest.fixture
def state_dir(tmp_path: Path) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}}


async def open_dashboard(browser: Browser, url: str) -> Page:
    page = await browser.page(url)
    await page.wait_for(
        "document.documentElement.dataset.connection === 'open'", what="the viewer socket"
    )
    await page.wait_for(
        "document.querySelectorAll('#face-select option').length >= 3", what="the face list"
    )
    return page


async def click(page: Page, selector: str) -> None:
    """A real mouse click (DevTools Input events) in the middle of ``selector``."""
    box = await page.evaluate(
        f"(r => r && [r.left + r.width / 2, r.top + r.height / 2])"
        f"(document.querySelector({json.dumps(selector)})?.getBoundingClientRect())"
    )
    assert box, f"no element {selector}"
    await page.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView()")
    box = await page.evaluate(
        f"(r => [r.left + r.width / 2, r.top + r.height / 2])"
        f"(document.querySelector({json.dumps(selector)}).getBoundingClientRect())"
    )
    for kind in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
        )


async def server_state(client: Any) -> dict[str, Any]:
    response = await client.get("/api/state")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def wait_server(client: Any, page: Page, check: Any, what: str) -> dict[str, Any]:
    for _ in range(100):
        state = await server_state(client)
        if check(state):
            return state
        await page.evaluate("new Promise(r => setTimeout(r, 50))")
    raise AssertionError(f"the server never got {what}: {state}; page errors {page.errors}")


async def test_dashboard_controls_change_the_server_state(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))

    await click(page, "#state-buttons [data-state='alert']")
    await wait_server(client, page, lambda s: s["state"] == "alert", "state alert")
    await click(page, "#emotion-buttons [data-emotion='happy']")
    await wait_server(client, page, lambda s: s["emotion"] == "happy", "emotion happy")
    await page.wait_for(
        "document.querySelector('#state-buttons [data-state=alert]').classList.contains('active')",
        what="the alert button marked active",
    )
    await page.wait_for("document.getElementById('badge').textContent === 'alert'")

    await page.evaluate(
        "(s => { s.value = '0.3'; s.dispatchEvent(new Event('input')); })"
        "(document.getElementById('intensity'))"
    )
    await wait_server(client, page, lambda s: abs(s["intensity"] - 0.3) < 1e-6, "intensity 0.3")

    # The look pad's top-left corner is lookAt (-1, -1).
    corner = await page.evaluate(
        "(r => [r.left + 2, r.top + 2])"
        "(document.getElementById('look-pad').getBoundingClientRect())"
    )
    for kind in ("mousePressed", "mouseReleased"):
        await page.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": corner[0], "y": corner[1], "button": "left", "clickCount": 1},
        )
    state = await wait_server(
        client, page, lambda s: s["lookAt"]["x"] < -0.9 and s["lookAt"]["y"] < -0.9, "lookAt"
    )
    assert state["state"] == "alert"

    await page.evaluate("document.getElementById('speak-input').value = 'hello there'")
    await click(page, "#speak-form button[type='submit']")
    await wait_server(client, page, lambda s: s["state"] == "speaking", "speaking")
    await page.wait_for(
        "[...document.querySelectorAll('#feed .entry')]"
        ".some(e => e.textContent.includes('hello there'))",
        what="the spoken text in the activity feed",
    )

    await click(page, "#reset")
    state = await wait_server(
        client, page, lambda s: s["state"] == "idle" and s["emotion"] == "neutral", "the reset"
    )
    assert state["lookAt"] == {"x": 0, "y": 0}
    assert state["intensity"] == 1

    # The face select switches every viewer's pack.
    await page.evaluate(
        "(s => { s.value = 'orb'; s.dispatchEvent(new Event('change')); })"
        "(document.getElementById('face-select'))"
    )
    await page.wait_for("window.faced.face === 'orb'", what="the dashboard face switching")
    assert await (await client.get("/api/config")).json() == {"face": "orb"}
    await page.wait_for(
        "document.querySelectorAll('#timeline-legend span').length === 11", what="the legend"
    )
    await page.screenshot("dashboard-after-controls")
    assert page.errors == []


async def test_dashboard_asks_for_the_key_once_and_shows_errors(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(auth={"api_key": KEY}, **state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))

    await click(page, "#state-buttons [data-state='thinking']")
    await page.wait_for("!document.getElementById('key-form').hidden", what="the key form")
    notice = await page.wait_for(
        "!document.getElementById('notice').hidden && document.getElementById('notice').textContent"
    )
    assert notice.startswith("401: API key required")
    assert (await server_state(client))["state"] != "thinking"

    await page.evaluate(f"document.getElementById('key-input').value = {KEY!r}")
    await click(page, "#key-form button[type='submit']")
    # The refused click is retried with the key.
    await wait_server(client, page, lambda s: s["state"] == "thinking", "the retried click")
    assert await page.evaluate("localStorage.getItem('faced.apiKey')") == KEY
    await click(page, "#state-buttons [data-state='working']")
    await wait_server(client, page, lambda s: s["state"] == "working", "state working")

    # A wrong stored key: 403, said plainly.
    await page.evaluate("localStorage.setItem('faced.apiKey', 'wrong')")
    await click(page, "#state-buttons [data-state='idle']")
    notice = await page.wait_for(
        "(t => t.startsWith('403') && t)(document.getElementById('notice').textContent)",
        what="the 403 notice",
    )
    assert "invalid API key" in notice

    # Chat without a gateway: the daemon's 503 error is shown in the chat log.
    await page.evaluate(f"localStorage.setItem('faced.apiKey', {KEY!r})")
    await page.evaluate("document.getElementById('chat-input').value = 'hi'")
    await click(page, "#chat-form button[type='submit']")
    line = await page.wait_for(
        "document.querySelector('#chat-log .error')?.textContent", what="the chat error"
    )
    assert line.startswith("503:")
    await page.screenshot("dashboard-errors")


async def test_dashboard_tracking_and_system_panels(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    await page.wait_for(
        "document.getElementById('tracking-status').textContent.startsWith('no camera')",
        what="'no camera' in the tracking panel",
    )
    assert await page.evaluate("document.querySelectorAll('#blendshapes .bs').length") == 52
    facts = await page.wait_for(
        "(t => t.includes('version') && t)(document.getElementById('system-facts').textContent)",
        what="the system facts",
    )
    health = await (await client.get("/health")).json()
    assert health["version"] in facts
    assert "camera" in facts and "off" in facts
    components = await page.evaluate("document.getElementById('components').textContent")
    for name in health["components"]:
        assert name in components
    await page.wait_for(
        "document.getElementById('person-status').textContent.startsWith('no camera')",
        what="'no camera' in the person part",
    )
    assert page.errors == []


async def test_dashboard_tracking_panel_shows_the_demo_camera(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(camera={"source": "demo"}, **state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    await page.wait_for(
        "document.getElementById('tracking-status').textContent === 'live'",
        seconds=20,
        what="live tracking from the demo camera",
    )
    await page.wait_for(
        "document.getElementById('presence').textContent === 'yes'", what="presence"
    )
    bars = await page.wait_for(
        """(() => {
          const bars = [...document.querySelectorAll('#blendshapes .bs')];
          const scale = b => Number(b.querySelector('.fill').style.transform.slice(7, -1));
          const out = Object.fromEntries(bars.map(b => [b.firstChild.textContent, scale(b)]));
          return Object.values(out).some(v => v > 0.05) && out;
        })()""",
        what="blendshape bars moving",
    )
    assert sorted(bars) == sorted(ARKIT_NAMES)
    assert all(0 <= value <= 1 for value in bars.values())
    head = await page.wait_for(
        "(t => t.startsWith('yaw') && t)(document.getElementById('head-pose').textContent)",
        what="the head pose",
    )
    assert re.fullmatch(r"yaw -?\d+° pitch -?\d+° roll -?\d+°", head), head
    latency = await page.wait_for(
        "(t => t.endsWith('ms') && t)(document.getElementById('tracking-latency').textContent)",
        what="the latency",
    )
    assert 0 < float(latency.split()[0]) < 5000
    fps = await page.wait_for(
        "Number(document.getElementById('tracking-fps').textContent)", what="the fps"
    )
    assert 0 < fps < 100  # the daemon's own estimate over its last second
    await page.wait_for(
        "document.getElementById('gaze-left').style.transform.startsWith('translate(')",
        what="the gaze dots",
    )
    facts = await page.wait_for(
        "(t => t.includes('demo') && t)(document.getElementById('system-facts').textContent)",
        seconds=12,
        what="the camera in the system panel",
    )
    assert "camera" in facts
    await page.screenshot("dashboard-tracking-demo")
    assert page.errors == []


async def test_dashboard_tracking_reconnects_after_a_server_restart(
    run_faced: Any, browser: Browser, tmp_path: Path
) -> None:
    # The tracking socket is the viewer's reconnecting client: it comes back on its own.
    config_text = f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    live = "document.getElementById('tracking-status').textContent === 'live'"
    server = await run_faced("--camera", "demo", config_text=config_text)
    page = await open_dashboard(browser, f"{server.url}/dashboard")
    await page.wait_for(live, seconds=20, what="live tracking from the demo camera")
    server.terminate()
    assert await server.wait_exit() == 0
    await page.wait_for(f"!({live})", what="the tracking socket's drop noticed")
    await run_faced("--camera", "demo", config_text=config_text, port=server.port)
    await page.wait_for(live, seconds=30, what="the tracking socket reconnecting")
    await page.wait_for(
        "document.documentElement.dataset.connection === 'open'", what="the viewer socket back"
    )
    assert page.errors == []


async def test_dashboard_chat_shows_the_gateway_reply(
    faced_client: Any, aiohttp_server: Any, state_dir: Any, browser: Browser
) -> None:
    # The OpenClaw gateway is another program: a stand-in on loopback answers for it.
    async def message(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        return web.json_response({"reply": f"echo: {body['message']}"})

    gateway_app = web.Application()
    gateway_app.router.add_post("/api/message", message)
    gateway = await aiohttp_server(gateway_app)
    client = await faced_client(openclaw={"gateway_url": str(gateway.make_url("/"))}, **state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    await page.evaluate("document.getElementById('chat-input').value = 'hello agent'")
    await click(page, "#chat-form button[type='submit']")
    reply = await page.wait_for(
        "document.querySelector('#chat-log .agent')?.textContent", what="the reply"
    )
    assert reply == "echo: hello agent"
    assert await page.evaluate("document.querySelector('#chat-log .user').textContent") == (
        "hello agent"
    )
    assert page.errors == []


async def test_dashboard_says_when_it_is_rate_limited(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(limits={"requests_per_s": 0.2, "request_burst": 1}, **state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    await click(page, "#state-buttons [data-state='listening']")
    await wait_server(client, page, lambda s: s["state"] == "listening", "state listening")
    await click(page, "#state-buttons [data-state='alert']")
    notice = await page.wait_for(
        "(t => t.startsWith('429') && t)(document.getElementById('notice').textContent)",
        what="the 429 notice",
    )
    assert "rate limited" in notice and "retry after" in notice
    assert (await server_state(client))["state"] == "listening"


async def test_dashboard_feed_and_timeline_start_from_the_history(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    for update in ({"state": "thinking"}, {"text": "before you came"}, {"state": "alert"}):
        assert (await client.post("/api/state", json=update)).status == 200
        await asyncio.sleep(0.6)  # a few pixels of the 5-minute timeline each
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    feed = await page.wait_for(
        "(t => t.includes('alert') && t)(document.getElementById('feed').textContent)",
        what="the history in the feed",
    )
    assert "idle → thinking" in feed
    assert "thinking → alert" in feed
    assert "before you came" in feed
    # The timeline paints the states in their colours: alert's #E57373 at the right end,
    # thinking's #CE93D8 somewhere before it.
    timeline_row = """(() => {
      const c = document.getElementById('timeline');
      const d = c.getContext('2d').getImageData(0, Math.floor(c.height / 2), c.width, 1).data;
      const at = x => [d[x * 4], d[x * 4 + 1], d[x * 4 + 2], d[x * 4 + 3]].join(',');
      const all = new Set();
      for (let x = 0; x < c.width; x++) all.add(at(x));
      return {end: at(c.width - 3), all: [...all]};
    })()"""
    row = await page.wait_for(
        f"(r => r.end === '229,115,115,255' && r)({timeline_row})", what="alert on the timeline"
    )
    assert "206,147,216,255" in row["all"], row
    assert page.errors == []


@pytest.fixture(scope="module")
def comes_and_goes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.api.test_person import _comes_and_goes  # noqa: PLC0415

    return _comes_and_goes(tmp_path_factory.mktemp("clips") / "comes-and-goes.avi")


async def test_dashboard_shows_the_person_and_their_events(
    faced_client: Any, state_dir: Any, browser: Browser, comes_and_goes: Path
) -> None:
    # The key is set: the summary goes with the Authorization header, the event stream
    # (EventSource sends no headers) with ?token=.
    client = await faced_client(
        camera={"source": f"file:{comes_and_goes}"}, auth={"api_key": KEY}, **state_dir
    )
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    await page.wait_for(
        "document.getElementById('person-status').textContent === 'needs the API key'",
        what="the person part asking for the key",
    )
    await page.evaluate(f"localStorage.setItem('faced.apiKey', {json.dumps(KEY)})")
    await page.goto(str(client.make_url("/dashboard")))
    await page.wait_for(
        "document.getElementById('person-status').textContent === 'live'",
        seconds=20,
        what="the person event stream",
    )
    # The clip loops: 2 s of a face looking at the camera, then 4 s of nobody.
    await page.wait_for(
        "(t => ['arrived', 'looks at the box', 'looks away', 'left'].every(k => t.includes(k)))"
        "(document.getElementById('person-events').textContent)",
        seconds=30,
        what="arrived, attention and left in the event log",
    )
    await page.wait_for(
        "document.getElementById('person-present').textContent.startsWith('yes')",
        seconds=30,
        what="the summary showing the person",
    )
    distance = await page.wait_for(
        "(t => t.endsWith(' m') && t)(document.getElementById('person-distance').textContent)",
        seconds=30,
        what="a distance",
    )
    assert 0.1 < float(distance.split()[0]) < 1.5
    assert await page.evaluate("document.getElementById('person-people').textContent") in (
        "0",
        "1",
    )
    await page.screenshot("dashboard-person")
    assert page.errors == []


async def test_dashboard_takes_panel_shows_progress_and_downloads(
    faced_client: Any, state_dir: Any, browser: Browser, tmp_path: Path
) -> None:
    clip = await asyncio.to_thread(
        lambda: write_clip(data.load_rgb("tongue.jpg"), tmp_path / "take.avi", 30)
    )
    body = await asyncio.to_thread(clip.read_bytes)
    client = await faced_client(**state_dir)
    page = await open_dashboard(browser, str(client.make_url("/dashboard")))
    # An upload made elsewhere shows up, with its progress bar, then its downloads.
    posted = await client.post(
        "/api/v1/jobs?label=dash", data=io.BytesIO(body), headers={"Content-Type": "video/avi"}
    )
    assert posted.status == 202
    await page.wait_for(
        "document.querySelectorAll('#takes-list li.take.done a.take-link').length === 2",
        seconds=60,
        what="the done take's two download links",
    )
    assert await page.evaluate("document.querySelector('#takes-list progress').value") == 1
    header = await page.evaluate(
        "fetch(document.querySelectorAll('#takes-list a.take-link')[1].href)"
        ".then(r => r.text()).then(t => t.split('\\n')[0])"
    )
    assert header.startswith("Timecode,BlendShapeCount,EyeBlinkLeft,")
    # Recording without a camera is refused in the notice, plainly.
    await click(page, "#takes-form button[type=submit]")
    await page.wait_for(
        "document.getElementById('notice').textContent.includes('no camera')",
        what="the refusal to record without a camera",
    )
    assert page.errors == []
