"""faced's own speaker on the real device: PortAudio through faced.devices.

Plays a 1 s tone at 22.05 kHz mono through the ``pyaudio`` sink exactly as
``faced serve --audio pyaudio[:DEVICE]`` would (resampled to 48 kHz stereo), and checks the
device paced the writer in real time and reported its latency. ``FACED_HW_AUDIO`` names the
device (an index or part of a name; default: the default output). Skips without pyaudio or
without an output device.
"""

from __future__ import annotations

import asyncio
import io
import math
import os
import struct
import time
import wave

import pytest

from faced.devices.audio import DeviceFormat, PyAudioMissing, PyAudioSink, import_pyaudio
from faced.devices.speaker import Drained, Speaker
from faced.devices.wav import parse_wav


def _tone_wav(hz: float = 440.0, seconds: float = 1.0, rate: int = 22050) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
        for n in range(int(rate * seconds))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def test_a_tone_plays_through_faceds_pyaudio_sink() -> None:
    try:
        pyaudio = import_pyaudio()
    except PyAudioMissing as exc:
        pytest.skip(str(exc))
    audio = pyaudio.PyAudio()
    try:
        if audio.get_device_count() == 0:
            pytest.skip("PortAudio sees no device")
    finally:
        audio.terminate()
    sink = PyAudioSink(os.environ.get("FACED_HW_AUDIO", ""))

    async def play() -> tuple[Speaker, float, int]:
        speaker = Speaker(sink, DeviceFormat(48000, 2), max_queued_s=10, max_queued_bytes=1 << 24)
        finished = asyncio.Event()
        amplitudes = 0

        def on_amplitude(value: float, heard_at: float) -> None:
            nonlocal amplitudes
            amplitudes += value > 0.1

        def on_drained(drained: Drained) -> None:
            if drained.done:
                finished.set()

        speaker.on_amplitude = on_amplitude
        speaker.on_drained = on_drained
        speaker.start(asyncio.get_running_loop())
        started = time.monotonic()
        speaker.enqueue(parse_wav(_tone_wav()), 0)
        speaker.done(0)
        async with asyncio.timeout(10):
            await finished.wait()
        elapsed = time.monotonic() - started
        speaker.stop()
        await asyncio.to_thread(speaker.join, 2.0)
        return speaker, elapsed, amplitudes

    speaker, elapsed, amplitudes = asyncio.run(play())
    report = speaker.report()
    print(f"\nplayed a 1 s tone on {sink.name} in {elapsed:.2f} s; health {report}")
    assert report["status"] == "ok", report.get("error")
    assert report["played_s"] >= 0.99
    assert 0.8 < elapsed < 2.0  # the device, not the writer, set the pace
    assert amplitudes >= 20  # ~30 envelope values a second, the mouth open
