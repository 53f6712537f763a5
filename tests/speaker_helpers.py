"""WAV bytes of every common shape, and reading what the ``wav:`` sink wrote (speaker tests).

The writer here is written from the RIFF layout, not with
faced.devices.wav, so the tests do not check the reader against itself; Python's ``wave``
module reads the sink's file (16-bit PCM, which it supports).
"""

from __future__ import annotations

import asyncio
import base64
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# WAVE_FORMAT_EXTENSIBLE sub-format GUIDs: the format tag, then this fixed tail.
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def encode_samples(samples: Floats, encoding: str) -> bytes:
    """``samples`` (frames x channels, floats in [-1, 1)) as little-endian PCM bytes."""
    flat = np.asarray(samples, np.float64).reshape(-1)
    if encoding == "u8":
        return (np.clip(np.round(flat * 128), -128, 127) + 128).astype(np.uint8).tobytes()
    if encoding == "i16":
        return np.clip(np.round(flat * 32768), -32768, 32767).astype("<i2").tobytes()
    if encoding == "i24":
        ints = np.clip(np.round(flat * 8388608), -8388608, 8388607).astype("<i4")
        return ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    if encoding == "i32":
        return np.clip(np.round(flat * 2147483648), -2147483648, 2147483647).astype("<i4").tobytes()
    if encoding == "f32":
        return flat.astype("<f4").tobytes()
    raise ValueError(encoding)


_BITS = {"u8": 8, "i16": 16, "i24": 24, "i32": 32, "f32": 32}


def make_wav(
    samples: Floats,
    rate: int,
    encoding: str = "i16",
    *,
    extensible: bool = False,
    extra_chunk: bool = False,
) -> bytes:
    samples = np.asarray(samples, np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    channels = samples.shape[1]
    bits = _BITS[encoding]
    tag = 3 if encoding == "f32" else 1
    block = channels * bits // 8
    data = encode_samples(samples, encoding)
    if extensible:
        fmt = (
            struct.pack(
                "<HHIIHHHHI",
                0xFFFE,
                channels,
                rate,
                rate * block,
                block,
                bits,
                22,
                bits,
                (1 << channels) - 1,
            )
            + struct.pack("<H", tag)
            + _GUID_TAIL
        )
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:  # a LIST chunk of odd length before the data, as editors write
        info = b"INFOISFT\x05\x00\x00\x00test\x00"
        chunks += b"LIST" + struct.pack("<I", len(info)) + info + b"\x00"
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def tone(hz: float, seconds: float, rate: int, level: float = 0.5) -> Floats:
    t = np.arange(round(seconds * rate)) / rate
    return level * np.sin(2 * np.pi * hz * t)


def noise(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> Floats:
    generator = np.random.default_rng(seed)
    return generator.uniform(-0.6, 0.6, size=(round(seconds * rate), channels))


def read_sink(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    """The sink's samples (frames x channels int16), its rate and channel count."""
    with wave.open(str(path), "rb") as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        assert reader.getsampwidth() == 2
        frames = reader.readframes(reader.getnframes())
    return np.frombuffer(frames, "<i2").reshape(-1, channels), rate, channels


async def read_sink_async(path: Path) -> tuple[npt.NDArray[np.int16], int, int]:
    return await asyncio.to_thread(read_sink, path)


async def speaker_health(client: Any) -> dict[str, Any]:
    response = await client.get("/health")
    report: dict[str, Any] = (await response.json())["components"]["speaker"]
    return report


async def wait_quiet(client: Any, seconds: float = 30.0, played_s: float = 0.0) -> dict[str, Any]:
    """Poll /health until the speaker has played ``played_s`` and nothing is queued."""
    async with asyncio.timeout(seconds):
        while True:
            report = await speaker_health(client)
            if report["played_s"] >= played_s and report["queued_s"] == 0 and not report["playing"]:
                return report
            await asyncio.sleep(0.05)


async def wait_state(client: Any, state: str, seconds: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            current: dict[str, Any] = await (await client.get("/api/state")).json()
            if current["state"] == state:
                return current
            await asyncio.sleep(0.05)


def to_int16(samples: Floats) -> npt.NDArray[np.int16]:
    """What the device gets for float samples at volume 100."""
    return np.clip(np.rint(np.asarray(samples) * 32768), -32768, 32767).astype(np.int16)


async def wait_played(client: Any, played_s: float, seconds: float = 30.0) -> None:
    """Poll /health until the speaker has played at least ``played_s`` seconds."""
    async with asyncio.timeout(seconds):
        while True:
            if (await speaker_health(client))["played_s"] >= played_s:
                return
            await asyncio.sleep(0.02)


FAST = {"requests_per_s": 1000, "request_burst": 1000}
WAV = {"Content-Type": "audio/wav"}


def audio_config(sink: Path, **audio: Any) -> dict[str, Any]:
    tts = audio.pop("tts", {"enabled": False})
    return {
        "audio": {"sink": f"wav:{sink}", "rate": 16000, "channels": 1, **audio, "tts": tts},
        "limits": FAST,
        "server": {"host": "127.0.0.1", "state_dir": str(sink.parent / "state")},
    }


async def post_chunk(client: Any, wav: bytes, **json: Any) -> Any:
    if json:
        body = {"data": base64.b64encode(wav).decode(), **json}
        return await client.post("/api/audio", json=body)
    return await client.post("/api/audio", data=wav, headers=WAV)
