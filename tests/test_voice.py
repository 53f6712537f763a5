"""The speaker with the real server and the ``wav:`` sink: order, flushes, conversion, errors.

The sink is the only fake: a WAV file written, paced in real
time, with exactly the frames a device would have played.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.speaker_helpers import (
    FAST,
    WAV,
    audio_config,
    make_wav,
    noise,
    post_chunk,
    read_sink_async,
    speaker_health,
    to_int16,
    tone,
    wait_played,
    wait_quiet,
    wait_state,
)


async def test_same_format_chunks_play_bit_exact_in_order_then_the_face_returns(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    assert (await speaker_health(client))["status"] in ("ok", "starting")
    await client.post("/api/state", json={"state": "thinking"})
    speak = await client.post("/api/speak", json={"emotion": "happy"})
    seq = (await speak.json())["seq"]
    chunks = [noise(0.15, 16000, seed=n) for n in range(4)]
    for chunk in chunks:
        response = await post_chunk(client, make_wav(chunk, 16000))
        assert response.status == 200, await response.text()
        assert (await response.json())["seq"] == seq
    assert (await (await client.get("/api/state")).json())["state"] == "speaking"
    await client.post("/api/audio-done")
    report = await wait_quiet(client, played_s=0.6)
    state = await wait_state(client, "thinking")  # back to what it did before speaking
    assert state["amplitude"] == 0.0
    assert report["status"] == "ok" and report["chunks"] == 4
    played, rate, channels = await read_sink_async(sink)
    assert (rate, channels) == (16000, 1)
    expected = np.concatenate([to_int16(chunk) for chunk in chunks])
    assert np.array_equal(played[:, 0], expected[:, 0])  # gapless, in order, bit-exact


async def test_a_new_sequence_flushes_the_old_one_and_late_chunks_are_dropped(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    first = (await (await client.post("/api/speak")).json())["seq"]
    long_chunk = noise(4.0, 16000, seed=1)
    assert (await post_chunk(client, make_wav(long_chunk, 16000))).status == 200
    await wait_played(client, 0.3)
    second = (await (await client.post("/api/speak")).json())["seq"]
    assert second == first + 1
    replacement = noise(0.3, 16000, seed=2)
    assert (await post_chunk(client, make_wav(replacement, 16000))).status == 200
    late = noise(0.3, 16000, seed=3)  # a chunk of the replaced utterance, arriving late
    response = await post_chunk(client, make_wav(late, 16000), seq=first)
    assert response.status == 200
    await client.post("/api/audio-done", json={"seq": second})
    await wait_state(client, "idle")
    played, _, _ = await read_sink_async(sink)
    played = played[:, 0]
    tail = to_int16(replacement)[:, 0]
    assert np.array_equal(played[-len(tail) :], tail)
    head = played[: -len(tail)]
    assert 0.3 * 16000 <= len(head) < 3.0 * 16000  # cut within a block of the flush
    assert np.array_equal(head, to_int16(long_chunk)[: len(head), 0])


SHAPES = [
    ("u8", 1, False),
    ("i16", 1, False),
    ("i24", 1, False),
    ("i32", 1, False),
    ("f32", 1, False),
    ("f32", 2, True),  # WAVE_FORMAT_EXTENSIBLE float, stereo, averaged to the mono device
    ("i24", 2, True),
    ("i16", 2, False),
]


@pytest.mark.parametrize(("encoding", "channels", "extensible"), SHAPES)
async def test_each_common_shape_is_converted_to_the_device_format(
    faced_client: Any, tmp_path: Path, encoding: str, channels: int, extensible: bool
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    left = tone(440, 0.3, 16000, 0.4)
    right = tone(1000, 0.3, 16000, 0.3)
    samples = np.stack([left, right], axis=1) if channels == 2 else left[:, None]
    wav = make_wav(samples, 16000, encoding, extensible=extensible, extra_chunk=True)
    assert (await post_chunk(client, wav)).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.3)
    played, _, _ = await read_sink_async(sink)
    expected = samples.mean(axis=1) if channels == 2 else samples[:, 0]
    # 8-bit input has 1/128 steps: its error is a quantisation step of that size.
    step = 256 if encoding == "u8" else 1
    difference = np.abs(played[:, 0].astype(np.int32) - to_int16(expected).astype(np.int32))
    assert len(played) == len(expected)
    assert difference.max() <= step


async def test_mono_is_copied_to_both_channels_of_a_stereo_device(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, channels=2))
    samples = noise(0.3, 16000, seed=4)
    assert (await post_chunk(client, make_wav(samples, 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.3)
    played, _, channels = await read_sink_async(sink)
    assert channels == 2
    assert np.array_equal(played[:, 0], to_int16(samples)[:, 0])
    assert np.array_equal(played[:, 1], played[:, 0])


async def test_22050_hz_chunks_are_resampled_to_48000_keeping_the_tone_clean(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, rate=48000))
    # Three chunks of one continuous 1 kHz tone: the resampler must join them seamlessly.
    whole = tone(1000, 0.9, 22050, 0.5)
    for piece in np.array_split(whole, 3):
        assert (await post_chunk(client, make_wav(piece, 22050))).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.85)
    played, rate, _ = await read_sink_async(sink)
    assert rate == 48000
    signal = played[:, 0].astype(np.float64) / 32768
    assert abs(len(signal) - 0.9 * 48000) <= 48  # the duration is kept (±1 ms)
    middle = signal[4800:-4800]  # away from the tone's own hard start and stop
    window = np.hanning(len(middle))
    spectrum = np.abs(np.fft.rfft(middle * window))
    freqs = np.fft.rfftfreq(len(middle), 1 / 48000)
    peak = freqs[np.argmax(spectrum)]
    assert abs(peak - 1000) < 3
    # Everything but the tone (±30 Hz) — images, clicks at chunk joins, the distortion of
    # repeating or dropping samples — must stay 70 dB down.
    power = spectrum**2
    tone_band = np.abs(freqs - 1000) <= 30
    spurious = power[~tone_band].sum() / power[tone_band].sum()
    assert 10 * np.log10(spurious) < -70
    assert np.abs(signal).max() == pytest.approx(0.5, abs=0.01)


async def test_invalid_wav_is_refused_with_400_and_playback_goes_on(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    good = [noise(0.5, 16000, seed=5), noise(0.3, 16000, seed=6)]
    viewer = await client.ws_connect("/ws/viewer")
    assert (await post_chunk(client, make_wav(good[0], 16000))).status == 200
    mp3 = bytearray(make_wav(noise(0.1, 16000), 16000))
    mp3[20:22] = (0x55).to_bytes(2, "little")
    eight_channels = bytearray(make_wav(noise(0.1, 16000), 16000))
    eight_channels[22:24] = (8).to_bytes(2, "little")
    slow = bytearray(make_wav(noise(0.1, 16000), 16000))
    slow[24:28] = (4000).to_bytes(4, "little")
    cases = [
        (b"ID3\x04 this is an mp3", "not a WAV file"),
        (bytes(slow), "sample rate 4000 Hz"),
        (bytes(mp3), "MP3"),
        (bytes(eight_channels), "8 channels"),
        (make_wav(noise(0.1, 16000), 16000)[:40], "no data chunk"),
        (make_wav(np.zeros((0, 1)), 16000), "empty WAV"),
    ]
    for data, words in cases:
        response = await post_chunk(client, data)
        assert response.status == 400
        body = await response.json()
        assert words in body["error"] and body["field"] == "data"
    response = await post_chunk(client, b"RIFF....WAVE", seq=1)  # base64 JSON too
    assert response.status == 400
    assert (await post_chunk(client, make_wav(good[1], 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.8)
    played, _, _ = await read_sink_async(sink)
    expected = np.concatenate([to_int16(chunk) for chunk in good])
    assert np.array_equal(played[:, 0], expected[:, 0])  # undisturbed, still gapless
    audio_messages = []
    async with asyncio.timeout(5):
        while len(audio_messages) < 2:
            message = await viewer.receive_json()
            if message.get("type") == "audio":
                audio_messages.append(message)
    await viewer.close()  # the viewers got the two good chunks; refused ones never reached them


async def test_the_queue_is_bounded_429_then_413(faced_client: Any, tmp_path: Path) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink, max_queued_s=1.0))
    assert (await post_chunk(client, make_wav(noise(0.7, 16000), 16000))).status == 200
    response = await post_chunk(client, make_wav(noise(0.7, 16000), 16000))
    assert response.status == 429
    body = await response.json()
    assert "audio.max_queued_s" in body["error"] and body["retry_after_s"] > 0
    assert int(response.headers["Retry-After"]) >= 1
    response = await post_chunk(client, make_wav(noise(1.5, 16000), 16000))
    assert response.status == 413
    assert "at most 1 s" in (await response.json())["error"]
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.7)
    played, _, _ = await read_sink_async(sink)
    assert len(played) == round(0.7 * 16000)  # only the accepted chunk was played


async def test_without_a_speaker_audio_is_only_relayed(faced_client: Any) -> None:
    client = await faced_client(limits=FAST)
    response = await client.post("/api/audio", data=b"RIFF-not-checked", headers=WAV)
    assert response.status == 200  # the viewers decode it; faced plays nothing
    components = (await (await client.get("/health")).json())["components"]
    assert components["speaker"] == {"status": "off", "sink": "none"}
    assert components["tts"]["status"] == "off"


async def test_a_streamed_wav_without_sizes_plays_whole(faced_client: Any, tmp_path: Path) -> None:
    """Written to a pipe, a WAV cannot have its sizes filled in (TTS engines write
    0xFFFFFFFF): the data runs to the end of the chunk."""
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    samples = noise(0.25, 16000, seed=13)
    streamed = bytearray(make_wav(samples, 16000))
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    assert (await post_chunk(client, bytes(streamed) + b"\x01")).status == 200  # odd byte
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.25)
    played, _, _ = await read_sink_async(sink)
    assert np.array_equal(played[:, 0], to_int16(samples)[:, 0])
