"""A test tone through the real playback device (ALSA)."""

from __future__ import annotations

import glob
import math
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import pytest


def _tone(path: Path, hz: float = 440.0, seconds: float = 1.0, rate: int = 48000) -> None:
    samples = (
        int(12000 * math.sin(2 * math.pi * hz * n / rate)) for n in range(int(rate * seconds))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def test_test_tone_plays(tmp_path: Path) -> None:
    playback = sorted(glob.glob("/dev/snd/pcmC*D*p"))
    if not playback:
        pytest.skip("no ALSA playback device (/dev/snd/pcmC*D*p)")
    if shutil.which("aplay") is None:
        pytest.skip("aplay missing (apt-get install alsa-utils)")
    tone = tmp_path / "tone.wav"
    _tone(tone)
    completed = subprocess.run(
        ["aplay", "-q", str(tone)], capture_output=True, text=True, timeout=30, check=False
    )
    print(f"\nplayed a 1 s 440 Hz tone; playback devices: {', '.join(playback)}")
    assert completed.returncode == 0, completed.stderr
