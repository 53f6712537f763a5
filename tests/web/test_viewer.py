"""The viewer page in a real headless Chromium against the real daemon on loopback.

Asserts on measurable features of the rendered canvas (sampled colours, the bounding box
and centroid of the dark feature pixels), not on golden images. Screenshots of key states
go to test-artifacts/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import array
import asyncio
import io
import math
import wave
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser import Browser, Page

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 640, 480
UNIT = min(WIDTH, HEIGHT)

# Test-side probes, injected into the page: read the face canvas's pixels.
PROBE = """
window.__probe = (() => {
  const canvas = document.getElementById("face");
  const ctx = canvas.getContext("2d");
  return {
    pixel(x, y) {
      const d = ctx.getImageData(x, y, 1, 1).data;
      return [d[0], d[1], d[2]];
    },
    near(x, y, rgb, tolerance) {
      const p = this.pixel(x, y);
      return p.every((v, i) => Math.abs(v - rgb[i]) <= tolerance);
    },
    // Bounding box and centroid of the dark pixels in rows y0..y1.
    dark(y0, y1, limit = 70) {
      const w = canvas.width;
      const data = ctx.getImageData(0, y0, w, y1 - y0).data;
      let count = 0, sx = 0, sy = 0, minX = 1e9, maxX = -1, minY = 1e9, maxY = -1;
      for (let y = 0; y < y1 - y0; y++) {
        for (let x = 0; x < w; x++) {
          const i = (y * w + x) * 4;
          if (data[i] + data[i + 1] + data[i + 2] < limit * 3) {
            count++; sx += x; sy += y + y0;
            if (x < minX) minX = x; if (x > maxX) maxX = x;
            if (y + y0 < minY) minY = y + y0; if (y + y0 > maxY) maxY = y + y0;
          }
        }
      }
      return count ? {count, cx: sx / count, cy: sy / count, minX, maxX, minY, maxY,
                      height: maxY - minY + 1, width: maxX - minX + 1} : {count: 0};
    },
  };
})();
true
"""

# Rows (in a 640x480 canvas) holding the default pack's eyes and its mouth.
EYE_ROWS = (int(HEIGHT / 2 - 0.2 * UNIT), int(HEIGHT / 2 + 0.03 * UNIT))
MOUTH_ROWS = (int(HEIGHT / 2 + 0.06 * UNIT), HEIGHT - 2)


def rgb(hex_color: str) -> list[int]:
    return [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]


def mix(a: str, b: str, share: float) -> list[int]:
    return [round(x + (y - x) * share) for x, y in zip(rgb(a), rgb(b), strict=True)]


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (WIDTH, HEIGHT)


@pytest.fixture
def state_dir(tmp_path: Path) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}}


async def open_viewer(browser: Browser, url: str, face: str = "default") -> Page:
    page = await browser.page(url)
    await page.wait_for(
        "document.documentElement.dataset.connection === 'open'", what="the viewer socket"
    )
    await page.wait_for(f"window.faced && window.faced.face === {face!r}", what=f"face {face}")
    await page.evaluate(PROBE)
    return page


async def wait_color(page: Page, color: list[int], tolerance: int = 8, x: int = 4) -> None:
    await page.wait_for(
        f"__probe.near({x}, 4, {color}, {tolerance})",
        seconds=6,
        what=f"background colour {color}",
    )


async def test_viewer_colours_follow_state_emotion_and_override(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))
    await wait_color(page, rgb("#4FC3F7"))  # idle
    for state, color in [
        ("thinking", "#CE93D8"),
        ("listening", "#81C784"),
        ("alert", "#E57373"),
        ("working", "#90CAF9"),
        ("sleeping", "#7986CB"),
    ]:
        response = await client.post("/api/state", json={"state": state})
        assert response.status == 200
        await wait_color(page, rgb(color))
        await page.screenshot(f"viewer-default-{state}")
    # Emotion colours blend into the state's by the pack's emotionColorBlend (0.5) x intensity.
    await client.post("/api/state", json={"state": "idle", "emotion": "happy", "intensity": 1})
    await wait_color(page, mix("#4FC3F7", "#FFD54F", 0.5))
    await page.screenshot("viewer-default-idle-happy")
    await client.post("/api/state", json={"emotion": "happy", "intensity": 0.4})
    await wait_color(page, mix("#4FC3F7", "#FFD54F", 0.2))
    await client.post("/api/state", json={"color": "#102030"})
    await wait_color(page, rgb("#102030"))
    await client.post("/api/state", json={"color": None, "emotion": "neutral"})
    await wait_color(page, rgb("#4FC3F7"))
    assert page.errors == []


async def test_mouth_opens_with_amplitude_and_eyes_follow_look_at(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))

    await client.post("/api/state", json={"state": "speaking", "amplitude": 0})
    await page.wait_for(
        f"__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]}).height < {0.06 * UNIT}",
        what="a nearly closed mouth",
    )
    closed = await page.evaluate(f"__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]})")
    await client.post("/api/state", json={"amplitude": 0.9})
    opened = await page.wait_for(
        f"(d => d.height > {closed['height'] + 0.12 * UNIT} && d)"
        f"(__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]}))",
        what="the mouth opening",
    )
    await page.screenshot("viewer-default-speaking-amplitude")
    assert opened["count"] > closed["count"] * 3
    assert abs(opened["cx"] - WIDTH / 2) < 0.05 * UNIT  # still centred

    await client.post(
        "/api/state", json={"state": "idle", "amplitude": 0, "lookAt": {"x": -1, "y": 0}}
    )
    left = await page.wait_for(
        f"(d => d.count > 200 && d.cx < {WIDTH / 2 - 0.025 * UNIT} && d)"
        f"(__probe.dark({EYE_ROWS[0]}, {EYE_ROWS[1]}))",
        what="eyes looking left",
    )
    await page.screenshot("viewer-default-look-left")
    await client.post("/api/state", json={"lookAt": {"x": 1, "y": 0}})
    right = await page.wait_for(
        f"(d => d.count > 200 && d.cx > {WIDTH / 2 + 0.025 * UNIT} && d)"
        f"(__probe.dark({EYE_ROWS[0]}, {EYE_ROWS[1]}))",
        what="eyes looking right",
    )
    await page.screenshot("viewer-default-look-right")
    assert right["cx"] - left["cx"] > 0.05 * UNIT
    assert page.errors == []


async def test_switching_the_face_pack_changes_the_look_live(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))
    await wait_color(page, rgb("#4FC3F7"))
    default_features = await page.evaluate(f"__probe.dark({EYE_ROWS[0]}, {EYE_ROWS[1]})")

    response = await client.put("/api/config", json={"face": "orb"})
    assert response.status == 200
    await page.wait_for("window.faced.face === 'orb'", what="the orb pack")
    # Orb: a dark room around a round head in the state colour.
    await wait_color(page, rgb("#101522"))
    await page.wait_for(
        f"__probe.near({WIDTH // 2}, {int(HEIGHT / 2 + 0.3 * UNIT)}, {rgb('#4FC3F7')}, 10)",
        what="the head in the idle colour",
    )
    await page.screenshot("viewer-orb-idle")

    await client.put("/api/config", json={"face": "terminal"})
    await page.wait_for("window.faced.face === 'terminal'", what="the terminal pack")
    await wait_color(page, rgb("#050805"))
    # Terminal draws light features on a dark panel: no dark feature pixels remain on the panel.
    await page.wait_for(
        f"__probe.near({WIDTH // 2}, {int(HEIGHT / 2 + 0.25 * UNIT)}, {rgb('#0E2A14')}, 10)",
        what="the panel in terminal's idle colour",
    )
    await page.screenshot("viewer-terminal-idle")
    assert default_features["count"] > 500

    # A pinned ?face= ignores live switches.
    pinned = await open_viewer(browser, str(client.make_url("/?face=orb")), face="orb")
    await client.put("/api/config", json={"face": "default"})
    await page.wait_for("window.faced.face === 'default'", what="back to default")
    assert await pinned.evaluate("window.faced.face") == "orb"
    assert page.errors == [] and pinned.errors == []


async def test_viewer_reconnects_after_a_server_restart(
    run_faced: Any, browser: Browser, tmp_path: Path
) -> None:
    config_text = f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    server = await run_faced(config_text=config_text)
    page = await open_viewer(browser, f"{server.url}/")
    assert await page.evaluate("window.faced.socket.connects") == 1
    server.terminate()
    assert await server.wait_exit() == 0
    await page.wait_for(
        "document.documentElement.dataset.connection === 'closed'", what="the drop noticed"
    )
    restarted = await run_faced(config_text=config_text, port=server.port)
    await page.wait_for(
        "document.documentElement.dataset.connection === 'open'",
        seconds=15,
        what="the viewer reconnecting",
    )
    assert await page.evaluate("window.faced.socket.connects") == 2
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{restarted.url}/api/state", json={"state": "alert"}) as reply,
    ):
        assert reply.status == 200
    await page.evaluate(PROBE)
    await wait_color(page, rgb("#E57373"))
    assert page.errors == []


def sine_wav(seconds: float, amplitude: float = 0.5, rate: int = 16000) -> bytes:
    """A mono 16-bit WAV of a 220 Hz tone."""
    frames = int(seconds * rate)
    samples = array.array(
        "h",
        (int(amplitude * 32767 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(frames)),
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buffer.getvalue()


async def test_audio_chunks_play_in_sequence_and_drive_the_mouth(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))
    muted = await open_viewer(browser, str(client.make_url("/?audio=off")))

    speak = await (await client.post("/api/speak", json={"amplitude": 0})).json()
    seq = speak["seq"]
    await page.wait_for(f"window.faced.audio.seq === {seq}", what="the new audio sequence")
    closed = await page.wait_for(
        f"(d => d.height < {0.06 * UNIT} && d)(__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]}))",
        what="a closed mouth before the audio",
    )
    chunk = sine_wav(0.8)
    for _ in range(3):
        response = await client.post(
            "/api/audio", data=chunk, headers={"Content-Type": "audio/wav"}
        )
        assert response.status == 200
        assert (await response.json())["seq"] == seq
    await client.post("/api/audio-done", json={"seq": seq})

    # The agent never sent an amplitude: the waveform's loudness opens the mouth.
    opened = await page.wait_for(
        f"(d => d.height > {closed['height'] + 0.1 * UNIT} && d)"
        f"(__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]}))",
        what="the mouth opening with the audio",
    )
    await page.screenshot("viewer-default-speaking-audio")
    assert opened["count"] > closed["count"] * 2
    assert await page.evaluate("window.faced.audio.playing") is True
    assert await page.evaluate("window.faced.animator.externalAmplitude") > 0.3
    await page.wait_for("window.faced.audio.chunksPlayed === 3", what="all three chunks queued")

    # A new utterance flushes what is still playing from the old one.
    second = (await (await client.post("/api/speak", json={})).json())["seq"]
    assert second == seq + 1
    await page.wait_for(
        f"window.faced.audio.seq === {second} && !window.faced.audio.playing",
        seconds=1.5,
        what="the old audio flushed",
    )
    # The kiosk viewer (?audio=off) played nothing.
    assert await muted.evaluate("window.faced.audio") is None
    assert page.errors == [] and muted.errors == []


async def test_text_bubble_winks_and_progress(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))

    await client.post("/api/state", json={"text": "Hello, world", "textDuration": 800})
    shown = await page.wait_for(
        "(b => !b.hidden && b.textContent)(document.getElementById('bubble'))",
        what="the text bubble",
    )
    assert shown == "Hello, world"
    await page.screenshot("viewer-default-text")
    await page.wait_for("document.getElementById('bubble').hidden", what="the bubble to expire")

    # A wink closes one eye: its dark area shrinks to a thin lid line; the other stays.
    def eye_half(side: str) -> str:
        x0, x1 = (0, WIDTH // 2) if side == "left" else (WIDTH // 2, WIDTH)
        return f"__probe.darkIn({x0}, {x1}, {EYE_ROWS[0]}, {EYE_ROWS[1]})"

    await page.evaluate(
        """__probe.darkIn = (x0, x1, y0, y1) => {
          const ctx = document.getElementById("face").getContext("2d");
          const data = ctx.getImageData(x0, y0, x1 - x0, y1 - y0).data;
          let count = 0;
          for (let i = 0; i < data.length; i += 4) {
            if (data[i] + data[i + 1] + data[i + 2] < 210) count++;
          }
          return count;
        }; true"""
    )
    # The largest of a few samples: a blink must not stand in for an open eye.
    both_open = max([await page.evaluate(eye_half("left")) for _ in range(6)])
    await client.post("/api/state", json={"winkLeft": 1})
    await page.wait_for(f"{eye_half('left')} < {both_open * 0.5}", what="the left eye closing")
    await page.wait_for(
        f"{eye_half('left')} < {both_open * 0.5} && {eye_half('right')} > {both_open * 0.8}",
        what="the right eye open while the left is closed",
    )
    await page.screenshot("viewer-default-wink")
    await client.post("/api/state", json={"winkLeft": 0})

    # Working with progress: a bar under the mouth whose filled part grows with progress.
    bar_rows = (int(HEIGHT / 2 + 0.24 * UNIT), int(HEIGHT / 2 + 0.28 * UNIT))
    bar = f"__probe.dark({bar_rows[0]}, {bar_rows[1]})"
    await client.post("/api/state", json={"state": "working", "progress": 0.2})
    low = await page.wait_for(
        f"(d => d.count > 0 && Math.abs(d.width - {0.2 * 0.24 * UNIT}) < 4 && d)({bar})",
        what="a progress bar a fifth full",
    )
    await client.post("/api/state", json={"progress": 1})
    await page.wait_for(
        f"(d => Math.abs(d.width - {0.24 * UNIT}) < 4 && d)({bar})", what="the bar filling"
    )
    await page.screenshot("viewer-default-working-progress")
    assert abs(low["cx"] - (WIDTH / 2 - 0.12 * UNIT + low["width"] / 2)) < 3  # fills from the left
    assert page.errors == []


async def test_tts_fallback_speaks_only_without_audio(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/?tts=1")))
    plain = await open_viewer(browser, str(client.make_url("/")))
    assert await plain.evaluate("window.faced.speech") is None
    if not await page.evaluate("window.faced.speech.available"):
        pytest.skip("this Chromium has no speechSynthesis")

    await client.post("/api/state", json={"text": "no audio here"})
    await page.wait_for("window.faced.speech.spoken === 1", what="the text spoken")

    # Speech announced with audio: the chunk arrives, so the browser stays silent.
    await client.post("/api/speak", json={"text": "real audio"})
    await client.post("/api/audio", data=sine_wav(0.5), headers={"Content-Type": "audio/wav"})
    await page.wait_for("window.faced.audio.chunksPlayed === 1", what="the audio chunk")
    await page.evaluate("new Promise(r => setTimeout(r, 2300))")
    assert await page.evaluate("window.faced.speech.spoken") == 1

    # Announced but no audio came: after the grace period the text is spoken after all.
    await client.post("/api/audio-done", json={})
    await page.evaluate("new Promise(r => setTimeout(r, 3100))")  # the chunk's quiet period
    await client.post("/api/speak", json={"text": "nobody sent audio"})
    await page.wait_for("window.faced.speech.spoken === 2", seconds=5, what="the late fallback")


COLUMN_PROBE = """__probe.column = (x, y0, y1) => {
  const ctx = document.getElementById("face").getContext("2d");
  const data = ctx.getImageData(x, y0, 1, y1 - y0).data;
  let sum = 0, count = 0;
  for (let y = 0; y < y1 - y0; y++) {
    const i = y * 4;
    if (data[i] + data[i + 1] + data[i + 2] < 210) { sum += y + y0; count++; }
  }
  return count ? sum / count : null;
}; true"""


# How far the mouth's middle sits below its sides (> 0 a smile, < 0 a frown), in pixels.
MOUTH_CURVE = f"""(() => {{
  const mid = __probe.column({WIDTH // 2}, {MOUTH_ROWS[0]}, {MOUTH_ROWS[1]});
  const left = __probe.column({WIDTH // 2 - 26}, {MOUTH_ROWS[0]}, {MOUTH_ROWS[1]});
  const right = __probe.column({WIDTH // 2 + 26}, {MOUTH_ROWS[0]}, {MOUTH_ROWS[1]});
  return mid - (left + right) / 2;
}})()"""


async def settled(page: Page, expression: str, seconds: float = 8.0) -> float:
    """The value of ``expression`` once it stopped changing (4 samples within 1 px)."""
    values: list[float] = []
    async with asyncio.timeout(seconds):
        while len(values) < 4 or max(values[-4:]) - min(values[-4:]) > 1:
            values.append(await page.evaluate(expression))
            await asyncio.sleep(0.15)
    return sum(values[-4:]) / 4


async def test_emotions_and_states_have_their_looks(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    client = await faced_client(**state_dir)
    page = await open_viewer(browser, str(client.make_url("/")))
    await page.evaluate(COLUMN_PROBE)
    eyes = f"__probe.dark({EYE_ROWS[0]}, {EYE_ROWS[1]}).count"
    mouth = f"__probe.dark({MOUTH_ROWS[0]}, {MOUTH_ROWS[1]})"

    async def post(update: dict[str, Any]) -> None:
        response = await client.post("/api/state", json=update)
        assert response.status == 200

    async def until(condition: str, what: str) -> Any:
        return await page.wait_for(condition, seconds=8, what=what)

    await post({"state": "idle", "emotion": "neutral"})
    await until(f"Math.abs({MOUTH_CURVE}) < 4", "a nearly straight mouth")
    # Open eyes' area: the largest of a few samples, so a blink cannot shrink it.
    samples = [await page.evaluate(eyes) for _ in range(6)]
    neutral_eyes = max(samples)

    await post({"emotion": "happy"})
    await until(f"{MOUTH_CURVE} > 6", "happy smiling")
    await page.screenshot("viewer-default-happy")
    await post({"emotion": "sad"})
    await until(f"{MOUTH_CURVE} < -6", "sad frowning")
    await page.screenshot("viewer-default-sad")

    # A compound: about halfway between sad and happy is nearly straight again.
    await post({"emotion": "sad", "emotionSecondary": "happy", "emotionBlend": 0.55})
    await until(f"Math.abs({MOUTH_CURVE}) < 5", "a sad-happy blend")

    await post({"emotion": "surprised", "emotionSecondary": "neutral", "emotionBlend": 0})
    await until(f"{mouth}.height > {0.07 * UNIT}", "surprise opening the mouth")
    await until(f"{eyes} > {neutral_eyes * 1.3}", "surprise widening the eyes")
    await page.screenshot("viewer-default-surprised")

    # Intensity scales the expression: a faint smile is flatter than a full one.
    await post({"emotion": "happy", "intensity": 0.25})
    faint = await settled(page, MOUTH_CURVE)
    await post({"intensity": 1})
    full = await settled(page, MOUTH_CURVE)
    assert 0 < faint < full - 3, (faint, full)

    await post({"state": "sleeping", "emotion": "neutral"})
    await until(f"{eyes} < {neutral_eyes * 0.4}", "closed eyes asleep")
    await page.screenshot("viewer-default-sleeping-closed")
    assert page.errors == []
