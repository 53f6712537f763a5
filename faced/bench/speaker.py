"""`faced bench speaker`: CPU the speaker spends per second of audio, beside a baseline.

Owns: this measurement and its sink. Does not own: the player it measures
(faced.devices.speaker). The real ``Speaker`` (queue, writer thread, conversion,
volume, envelope, callbacks to an event loop) plays WAV chunks into a sink that takes the
frames and returns at once — the OS boundary, without a device's pacing — so the run takes
a fraction of the audio's duration and the process CPU time it costs is what playback
costs. The baseline, measured in the same run, is the floor any player pays: the same
device-format bytes handed to the same sink in the same ~33 ms blocks, with nothing
decoded or converted. Figures are CPU milliseconds per second of audio, and the share of
one core that real-time playback takes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
import wave

import numpy as np

from faced.devices.audio import SAMPLE_WIDTH, DeviceFormat
from faced.devices.speaker import BLOCKS_PER_S, Drained, Speaker
from faced.devices.wav import parse_wav


class _TakingSink:
    """Takes the frames and returns: a device with an infinite buffer."""

    name = "bench"

    def __init__(self) -> None:
        self.frames = 0
        self.frame_bytes = 1

    def open(self, device_format: DeviceFormat) -> None:
        self.frame_bytes = device_format.channels * SAMPLE_WIDTH

    def write(self, frames: bytes) -> None:
        self.frames += len(frames) // self.frame_bytes

    def latency_s(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per case (60)")
    parser.add_argument("--rate", type=int, default=48000, help="device rate (48000)")
    parser.add_argument("--channels", type=int, default=2, choices=(1, 2), help="(2)")


def _wav(seconds: float, rate: int, channels: int, float32: bool) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    samples = np.repeat(tone[:, None], channels, axis=1)
    if not float32:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(channels)
            writer.setsampwidth(2)
            writer.setframerate(rate)
            writer.writeframes((samples * 32767).astype("<i2").tobytes())
        return buffer.getvalue()
    data = samples.astype("<f4").tobytes()
    fmt = (3).to_bytes(2, "little") + channels.to_bytes(2, "little")
    fmt += rate.to_bytes(4, "little") + (rate * channels * 4).to_bytes(4, "little")
    fmt += (channels * 4).to_bytes(2, "little") + (32).to_bytes(2, "little")
    body = b"WAVEfmt " + (16).to_bytes(4, "little") + fmt
    body += b"data" + len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


async def _play(chunks: list[bytes], device: DeviceFormat) -> tuple[float, float]:
    """CPU seconds and audio seconds for playing ``chunks`` through the Speaker."""
    sink = _TakingSink()
    seconds = sum(parse_wav(chunk).seconds for chunk in chunks)
    speaker = Speaker(sink, device, max_queued_s=seconds + 1, max_queued_bytes=1 << 30)
    finished = asyncio.Event()
    amplitudes = 0

    def on_amplitude(value: float, heard_at: float) -> None:
        nonlocal amplitudes
        amplitudes += 1

    def on_drained(drained: Drained) -> None:
        if drained.done:
            finished.set()

    speaker.on_amplitude = on_amplitude
    speaker.on_drained = on_drained
    cpu = time.process_time()
    speaker.start(asyncio.get_running_loop())
    for chunk in chunks:
        speaker.enqueue(parse_wav(chunk), 0)
    speaker.done(0)
    await finished.wait()
    cpu = time.process_time() - cpu
    speaker.stop()
    await asyncio.to_thread(speaker.join, 2.0)
    assert amplitudes > 0
    return cpu, sink.frames / device.rate


def _baseline(seconds: float, device: DeviceFormat) -> float:
    sink = _TakingSink()
    sink.open(device)
    frame_bytes = device.channels * SAMPLE_WIDTH
    data = bytes(round(seconds * device.rate) * frame_bytes)
    block = device.rate // BLOCKS_PER_S * frame_bytes
    cpu = time.process_time()
    for start in range(0, len(data), block):
        sink.write(data[start : start + block])
    return time.process_time() - cpu


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or not 8000 <= args.rate <= 192000:
        print("faced bench speaker: --seconds > 0, --rate 8000-192000", file=sys.stderr)
        return 2
    device = DeviceFormat(rate=args.rate, channels=args.channels)
    cases = [
        (f"i16 {args.rate} Hz {args.channels} ch (device format)", args.rate, args.channels, False),
        ("i16 22050 Hz mono (resampled, upmixed)", 22050, 1, False),
        ("f32 44100 Hz stereo (resampled)", 44100, 2, True),
    ]
    chunk_s = 2.0
    print(
        f"faced bench speaker: {args.seconds:g} s of audio per case in {chunk_s:g} s chunks, "
        f"device {args.rate} Hz {args.channels} ch, sink taking frames without pacing"
    )
    print(f"{'case':<44} {'CPU ms / audio s':>17} {'% of a core':>12}")
    floor = _baseline(args.seconds, device)
    print(
        f"{'baseline: device bytes to the sink':<44} {floor / args.seconds * 1000:>17.2f} "
        f"{floor / args.seconds * 100:>12.2f}"
    )
    for label, rate, channels, float32 in cases:
        count = max(1, round(args.seconds / chunk_s))
        chunks = [_wav(args.seconds / count, rate, channels, float32) for _ in range(count)]
        cpu, played = asyncio.run(_play(chunks, device))
        print(f"{label:<44} {cpu / played * 1000:>17.2f} {cpu / played * 100:>12.2f}")
    return 0
