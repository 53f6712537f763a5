"""Lip sync waits for the device's output latency: the mouth moves when the sound is heard.

The fake sits at the hardware boundary only: a ``wav:`` sink
(real-time paced like a device) that also declares the output latency a PortAudio stream
would report. The real ``Speaker`` plays a tone through it; every amplitude it reports must
be stamped with the time its block is *heard* (written + latency), and the end of the
sequence with the time its last sample is heard. hw-tests/test_voice.py checks the same on
a real device.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from faced.devices.audio import DeviceFormat, WavSink
from faced.devices.speaker import BLOCKS_PER_S, Drained, Speaker
from faced.devices.wav import parse_wav
from tests.speaker_helpers import make_wav, tone

RATE = 16000
LATENCY_S = 0.25
SLACK_S = 0.02

# 20 ms of slack on real-time paced writes: never beside another test (make pytest's
# serial phase).
pytestmark = pytest.mark.serial


class LatentWavSink(WavSink):
    """A WAV-file device whose sound comes out ``latency`` after each write returns."""

    def __init__(self, path: Path, latency: float) -> None:
        super().__init__(path)
        self.latency = latency
        self.written_at: list[float] = []

    def write(self, frames: bytes) -> None:
        super().write(frames)
        self.written_at.append(time.monotonic())

    def latency_s(self) -> float:
        return self.latency


@pytest.mark.parametrize("latency", [0.0, LATENCY_S])
async def test_amplitude_and_the_end_are_stamped_when_the_sound_is_heard(
    tmp_path: Path, latency: float
) -> None:
    sink = LatentWavSink(tmp_path / "out.wav", latency)
    speaker = Speaker(sink, DeviceFormat(RATE, 1), max_queued_s=10.0, max_queued_bytes=10_000_000)
    amplitudes: list[tuple[float, float]] = []
    drained: asyncio.Future[Drained] = asyncio.get_running_loop().create_future()
    speaker.on_amplitude = lambda value, heard_at: amplitudes.append((value, heard_at))

    def on_drained(report: Drained) -> None:
        if not drained.done():
            drained.set_result(report)

    speaker.on_drained = on_drained
    speaker.start(asyncio.get_running_loop())
    try:
        seconds = 0.6
        speaker.enqueue(parse_wav(make_wav(tone(440, seconds, RATE), RATE)), 1)
        speaker.done(1)
        async with asyncio.timeout(10):
            end = await drained
    finally:
        speaker.stop()
        await asyncio.to_thread(speaker.join, 5)
    blocks = [(value, heard_at) for value, heard_at in amplitudes if value > 0.0]
    frames, block = round(seconds * RATE), RATE // BLOCKS_PER_S
    assert len(blocks) == len(sink.written_at) == -(-frames // block)
    for (_value, heard_at), written_at in zip(blocks, sink.written_at, strict=True):
        # Stamped just after the write returned (slack for a busy machine's scheduling).
        assert 0.0 <= heard_at - (written_at + latency) < SLACK_S
    # A tone at half scale opens the mouth and keeps it open while it lasts.
    assert max(value for value, _ in blocks) > 0.9
    last_block_s = (frames - (len(blocks) - 1) * block) / RATE
    assert end.done and end.seq == 1
    assert 0.0 <= end.heard_at - (sink.written_at[-1] + latency + last_block_s) < SLACK_S
