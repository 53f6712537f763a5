"""Lip sync: the amplitude a real /ws/viewer client gets follows the sound played.

A tone with silences is played through the ``wav:`` sink
(paced in real time, like a device); the viewer's amplitude must rise with each burst and
fall in each silence, in step with playback.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from faced.keys import OPENFACE_KEY
from tests.speaker_helpers import (
    audio_config,
    make_wav,
    post_chunk,
    speaker_health,
    tone,
    wait_state,
)


def runs(values: list[tuple[float, float]], high: float, low: float) -> list[tuple[str, float]]:
    """The envelope as alternating ("high"|"low", start time) runs (hysteresis between)."""
    found: list[tuple[str, float]] = []
    for at, value in values:
        level = "high" if value >= high else "low" if value <= low else None
        if level is not None and (not found or found[-1][0] != level):
            found.append((level, at))
    return found


async def test_viewer_amplitude_tracks_the_envelope_of_a_tone_with_silences(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, rate=16000))
    viewer = await client.ws_connect("/ws/viewer")
    assert (await viewer.receive_json())["type"] == "state"
    rate = 16000
    burst, gap = tone(220, 0.6, rate, 0.4), np.zeros(round(0.6 * rate))
    signal = np.concatenate([gap[: rate // 5], burst, gap, burst, gap[: rate // 5]])
    await client.post("/api/speak")
    started = time.monotonic()
    assert (await post_chunk(client, make_wav(signal, rate))).status == 200
    await client.post("/api/audio-done")
    seen: list[tuple[float, float]] = []
    async with asyncio.timeout(30):
        while True:
            message = await viewer.receive_json()
            if message.get("type", "state") != "state":
                continue
            seen.append((time.monotonic() - started, message["amplitude"]))
            if message["state"] != "speaking":
                break  # audio-done played out: the face went back to idle
    await viewer.close()
    assert seen[-1][1] == 0.0  # the mouth closes at the end
    shape = runs(seen, high=0.5, low=0.05)
    assert [level for level, _ in shape] == ["low", "high", "low", "high", "low"]
    # The bursts start 0.2 s and 1.4 s into the sound: the mouth opens 1.2 s apart (the
    # envelope is published as the blocks are heard, not when the chunk was queued).
    first, second = shape[1][1], shape[3][1]
    assert 0.9 < second - first < 1.6
    # A 0.4 sine has an RMS of 0.28: with the gain of 3.5 the mouth opens (almost) fully.
    assert max(value for _, value in seen) > 0.9
    peak = max(range(len(seen)), key=lambda index: seen[index][1])
    assert seen[peak][0] > 0.15  # not all at once at the post


async def test_the_speaker_wins_over_an_agents_amplitude_while_audio_plays(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    await client.post("/api/speak")
    assert (await post_chunk(client, make_wav(tone(220, 3.0, 16000, 0.4), 16000))).status == 200
    viewer = await client.ws_connect("/ws/viewer")
    await viewer.receive_json()
    await client.post("/api/state", json={"amplitude": 0.1})
    async with asyncio.timeout(10):
        while True:
            message = await viewer.receive_json()
            if message.get("type", "state") == "state" and message["amplitude"] > 0.8:
                break  # corrected back to the sound's envelope
    await viewer.close()


async def test_audio_counts_as_playing_until_it_is_heard_not_until_audio_done(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    openface = client.app[OPENFACE_KEY]  # what gaze follow's mirror reads
    await client.post("/api/speak")
    assert (await post_chunk(client, make_wav(tone(220, 2.0, 16000, 0.4), 16000))).status == 200
    await client.post("/api/audio-done")  # early: the queue still holds most of the chunk
    async with asyncio.timeout(10):
        while True:
            if openface.audio_playing:
                break
            await asyncio.sleep(0.01)
    assert (await speaker_health(client))["playing"]
    await wait_state(client, "idle")
    assert not openface.audio_playing  # released once the last sample was heard
