"""The TTS fallback with the real espeak-ng (a Debian package, .ci/debian-packages.txt).

Text in a speaking state with no audio chunk following is
spoken through the ``wav:`` sink; agent audio arriving in time keeps espeak-ng silent.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.speaker_helpers import (
    audio_config,
    make_wav,
    noise,
    post_chunk,
    read_sink_async,
    speaker_health,
    to_int16,
    wait_played,
    wait_quiet,
    wait_state,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng missing (apt-get install espeak-ng)"
)
TTS = {"enabled": True, "grace_s": 0.3}


async def tts_report(client: Any) -> dict[str, Any]:
    report: dict[str, Any] = (await (await client.get("/health")).json())["components"]["tts"]
    return report


async def tts_checked(client: Any) -> dict[str, Any]:
    """espeak-ng is looked up and tried in the background at startup: wait for the answer."""
    async with asyncio.timeout(10):
        while True:
            report = await tts_report(client)
            if report["status"] != "starting":
                return report
            await asyncio.sleep(0.05)


async def tts_ready(client: Any) -> None:
    assert (await tts_checked(client))["status"] == "ok"


async def test_text_without_audio_is_spoken_then_the_face_returns(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts=TTS))
    await tts_ready(client)
    await client.post("/api/state", json={"state": "listening"})
    response = await client.post("/api/state", json={"state": "speaking", "text": "Hello there."})
    assert response.status == 200
    await wait_state(client, "listening")  # spoken to the end, then back
    report = await speaker_health(client)
    assert report["played_s"] > 0.4  # "Hello there." at 165 words a minute
    played, _, _ = await read_sink_async(sink)
    rms = float(np.sqrt(np.mean((played[:, 0] / 32768.0) ** 2)))
    assert rms > 0.02  # speech, not silence
    assert (await tts_report(client))["spoken"] == 1


async def test_a_speak_that_expects_no_audio_is_spoken_at_once(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts={"enabled": True, "grace_s": 10}))
    await tts_ready(client)
    await client.post("/api/speak", json={"text": "Right away.", "expectAudio": False})
    await wait_played(client, 0.2, seconds=8)  # well before the 10 s grace period ends
    await wait_state(client, "idle")


async def test_agent_audio_within_the_grace_period_keeps_tts_silent(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts={"enabled": True, "grace_s": 1.0}))
    await tts_ready(client)
    await client.post("/api/speak", json={"text": "This text has its own audio."})
    chunk = noise(0.4, 16000, seed=9)
    assert (await post_chunk(client, make_wav(chunk, 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_state(client, "idle")
    await wait_quiet(client)
    played, _, _ = await read_sink_async(sink)
    assert np.array_equal(played[:, 0], to_int16(chunk)[:, 0])  # the agent's audio only
    report = await tts_report(client)
    assert report["cancelled"] == 1 and report["spoken"] == 0  # armed, then called off


async def test_agent_audio_cuts_speech_already_playing(faced_client: Any, tmp_path: Path) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts={"enabled": True, "grace_s": 0.1}))
    await tts_ready(client)
    text = "This is a long sentence that espeak will take several seconds to say out loud."
    await client.post("/api/state", json={"state": "speaking", "text": text})
    await wait_played(client, 0.3, seconds=15)
    chunk = noise(0.3, 16000, seed=10)
    assert (await post_chunk(client, make_wav(chunk, 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_state(client, "idle")
    played, _, _ = await read_sink_async(sink)
    assert np.array_equal(played[-len(chunk) :, 0], to_int16(chunk)[:, 0])
    assert len(played) < 3.0 * 16000  # the rest of the sentence was dropped


async def test_without_espeak_ng_tts_is_off_and_nothing_breaks(
    faced_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # the OS boundary: no program
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts=TTS))
    report = await tts_checked(client)
    assert report["status"] == "off" and report["available"] is False
    assert "espeak-ng is not installed" in report["reason"]
    response = await client.post("/api/state", json={"state": "speaking", "text": "Hi."})
    assert response.status == 200
    assert (await post_chunk(client, make_wav(noise(0.2, 16000), 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_state(client, "idle")
    assert (await speaker_health(client))["status"] == "ok"


async def test_a_voice_espeak_ng_does_not_have_is_reported(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, tts={"enabled": True, "voice": "xx-nope"}))
    report = await tts_checked(client)
    assert report["status"] == "error"
    assert "audio.tts.voice = 'xx-nope'" in report["reason"]
    assert "does not exist" in report["reason"]
    assert (await (await client.get("/health")).json())["status"] == "degraded"
    response = await client.post("/api/state", json={"state": "speaking", "text": "Hi."})
    assert response.status == 200
