"""The speaker port: where converted PCM goes (PortAudio, a WAV file, or nowhere).

Owns the sinks: opening the output, writing PCM to it at the device's pace, closing it.
Does not own conversion, queueing or retrying (faced.devices.speaker).
Why: the speaker's logic runs the same on PortAudio, a WAV file in tests, or no device.

A ``Sink`` takes interleaved signed 16-bit frames at the
device format (``DeviceFormat``) from the speaker's writer thread (faced.devices.speaker)
and blocks for as long as the device needs to take them, so the writer is paced by the
hardware:

* ``pyaudio[:DEVICE]`` — PortAudio (imported lazily; extra ``audio``); DEVICE is an index
  or a substring of the device name; the default output device when omitted.
* ``wav:<path>`` — writes exactly the frames that would have been played to one WAV file at
  the device format, paced in real time like a device (tests, debugging).
* ``none`` — no sink: faced does not own a speaker (``make_sink`` answers None) and the
  viewers play ``/api/audio`` themselves.

Every method is called from the writer thread only; ``open`` raising or ``write`` raising
is a device failure the speaker logs, reports in health and retries.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

SAMPLE_WIDTH = 2  # the device format is always signed 16-bit little-endian


@dataclass(frozen=True)
class DeviceFormat:
    rate: int
    channels: int


class Sink(Protocol):
    name: str

    def open(self, device_format: DeviceFormat) -> None: ...

    def write(self, frames: bytes) -> None:
        """Play ``frames`` (int16 interleaved), blocking about as long as they last."""

    def latency_s(self) -> float:
        """How long after ``write`` returns the first frame it wrote is heard."""

    def close(self) -> None: ...


class _RealTimePacer:
    """Sleeps so writes proceed at the rate a device would consume them."""

    def __init__(self) -> None:
        self._rate = 1
        self._frame_size = 1
        self._next: float | None = None

    def start(self, device_format: DeviceFormat) -> None:
        self._rate = device_format.rate
        self._frame_size = device_format.channels * SAMPLE_WIDTH
        self._next = None

    def pace(self, frames: bytes) -> None:
        now = time.monotonic()
        if self._next is None or self._next < now:
            self._next = now  # the device ran dry: playback restarts now
        delay = self._next - now
        if delay > 0:
            time.sleep(delay)
        self._next += len(frames) / self._frame_size / self._rate


class WavSink:
    """One WAV file holding every frame played since the sink was opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"wav:{path}"
        self._file: wave.Wave_write | None = None
        self._raw: BinaryIO | None = None
        self._pacer = _RealTimePacer()

    def open(self, device_format: DeviceFormat) -> None:
        self.close()
        raw = self.path.open("wb")  # closed in close()
        try:
            writer = wave.open(raw, "wb")  # noqa: SIM115  (closed in close())
        except BaseException:
            raw.close()
            raise
        self._raw = raw
        writer.setnchannels(device_format.channels)
        writer.setsampwidth(SAMPLE_WIDTH)
        writer.setframerate(device_format.rate)
        self._file = writer
        self._pacer.start(device_format)

    def write(self, frames: bytes) -> None:
        if self._file is None:
            raise OSError("wav sink is not open")
        self._file.writeframes(frames)  # also rewrites the header, so the file is always valid
        if self._raw is not None:
            self._raw.flush()  # a full or vanished disk fails here, as a device would
        self._pacer.pace(frames)

    def latency_s(self) -> float:
        return 0.0

    def close(self) -> None:
        writer, self._file = self._file, None
        raw, self._raw = self._raw, None
        if writer is not None:
            with contextlib.suppress(OSError):  # the device is gone; nothing more to save
                writer.close()
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.close()


class PyAudioSink:
    """PortAudio output through pyaudio's blocking stream."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.name = f"pyaudio:{device}" if device else "pyaudio"
        self._pyaudio: Any = None
        self._stream: Any = None
        self._rate = 1
        self._frame_bytes = SAMPLE_WIDTH
        self._last_write_s = 0.0

    def open(self, device_format: DeviceFormat) -> None:
        self.close()
        self._rate = device_format.rate
        self._frame_bytes = device_format.channels * SAMPLE_WIDTH
        pyaudio = import_pyaudio()
        self._pyaudio = pyaudio.PyAudio()
        index = find_device(self._pyaudio, self.device) if self.device else None
        self._stream = self._pyaudio.open(
            format=pyaudio.paInt16,
            channels=device_format.channels,
            rate=device_format.rate,
            output=True,
            output_device_index=index,
        )

    def write(self, frames: bytes) -> None:
        if self._stream is None:
            raise OSError("pyaudio stream is not open")
        self._stream.write(frames)
        self._last_write_s = len(frames) / self._frame_bytes / self._rate

    def latency_s(self) -> float:
        if self._stream is None:
            return 0.0
        # A blocking write returns once its last frame is in the buffer, which PortAudio
        # plays ``output latency`` later; the first frame is heard that much sooner.
        return max(0.0, float(self._stream.get_output_latency()) - self._last_write_s)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop_stream()
                stream.close()
            except Exception:  # a vanished device fails in many ways
                pass
        audio, self._pyaudio = self._pyaudio, None
        if audio is not None:
            audio.terminate()


class PyAudioMissing(RuntimeError):
    pass


_PYAUDIO_MISSING = (
    "pyaudio is not installed: pip install 'faced[audio]' "
    "(needs PortAudio: apt-get install libportaudio2)"
)


def import_pyaudio() -> Any:
    try:
        import pyaudio  # noqa: PLC0415  (hardware library: imported only when used)
    except ImportError as exc:
        raise PyAudioMissing(_PYAUDIO_MISSING) from exc
    return pyaudio


def output_devices(audio: Any) -> list[dict[str, Any]]:
    devices = []
    for index in range(audio.get_device_count()):
        info = audio.get_device_info_by_index(index)
        if int(info.get("maxOutputChannels", 0)) > 0:
            devices.append(
                {
                    "index": index,
                    "name": str(info.get("name", "")),
                    "channels": int(info["maxOutputChannels"]),
                    "rate": int(info.get("defaultSampleRate", 0)),
                }
            )
    return devices


def find_device(audio: Any, device: str) -> int:
    """The output device index named by ``device`` (an index or part of a name)."""
    devices = output_devices(audio)
    if device.isdigit():
        index = int(device)
        if any(d["index"] == index for d in devices):
            return index
    else:
        for d in devices:
            if device.lower() in d["name"].lower():
                return int(d["index"])
    names = ", ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"
    raise OSError(f"no output device {device!r} (devices: {names})")


def check_sink(spec: str) -> None:
    """Refuse a malformed ``audio.sink`` value, or a ``pyaudio`` one in a build without
    pyaudio (ValueError naming what is expected). Nothing is imported or opened."""
    sink = make_sink(spec)
    if isinstance(sink, PyAudioSink) and importlib.util.find_spec("pyaudio") is None:
        raise ValueError(_PYAUDIO_MISSING)


def make_sink(spec: str) -> Sink | None:
    """The sink ``audio.sink`` names; None for ``none``. Opens nothing (the writer does)."""
    if spec == "none":
        return None
    if spec.startswith("wav:"):
        path = spec.removeprefix("wav:")
        if not path:
            raise ValueError("wav: needs a path, e.g. wav:/tmp/faced.wav")
        return WavSink(Path(path).expanduser())
    if spec == "pyaudio" or spec.startswith("pyaudio:"):
        return PyAudioSink(spec.removeprefix("pyaudio").removeprefix(":"))
    raise ValueError("expected none, wav:<path> or pyaudio[:DEVICE]")


__all__ = [
    "SAMPLE_WIDTH",
    "DeviceFormat",
    "PyAudioMissing",
    "PyAudioSink",
    "Sink",
    "WavSink",
    "check_sink",
    "find_device",
    "import_pyaudio",
    "make_sink",
    "output_devices",
]
