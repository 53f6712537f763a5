"""The speaker: one queue of WAV chunks, played gaplessly by a writer thread, with lip sync.

Owns playback: the queue, the writer thread, conversion, volume, the mouth's envelope and
the device's health (retried with faced.devices.retry).
Does not own the sinks (faced.devices.audio), parsing (faced.devices.wav) or the API.
Why: audio must play without gaps while the event loop never waits for it.

``Speaker`` owns the playback queue, the writer thread, the
conversion to the device format, the volume, the mouth's envelope and the device's
health. Its caller (faced.voice) feeds it parsed chunks (faced.devices.wav) on the
event loop; everything slow happens in the writer thread, which is paced by the sink
(faced.devices.audio) — the event loop never waits for audio.

* Sequences: chunks carry the Open Face audio sequence number. A newer sequence flushes
  what is queued or half-played of the old one (within one block, ~33 ms); chunks of an
  older one are dropped. ``done(seq)`` lets the queue drain; the end of the sequence is
  then reported once, timed for when its last sample is heard.
* Conversion: decoded a slice (~1/30 s) at a time to float32; mono↔stereo by copying or
  averaging; other rates through libsoxr's streaming resampler (one per run of chunks of
  the same rate, so chunk boundaries stay seamless; its tail is flushed when the queue runs
  dry); then the volume, then rounding to int16. Same-format int16 input at volume 100
  comes out bit-exact.
* Bounds: at most ``max_queued_s`` seconds and ``max_queued_bytes`` bytes wait; ``enqueue``
  raises ``QueueFull`` (with the wait until there is room) rather than grow.
* Lip sync: per written block, the RMS of the samples sent to the device (before the
  volume: a muted face still moves its mouth), smoothed with a fast attack and a slower
  release, is reported with the time it will be *heard* (write time + the sink's output
  latency), so the caller can publish it in step with the sound.
* Failure: a sink whose ``open`` or ``write`` raises is logged (once per distinct reason),
  reported as ``error`` with the reason, closed and reopened with backoff (0.5 s doubling
  to 10 s). Audio that cannot be played is dropped, not hoarded, meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import numpy as np
import soxr

from faced.devices.audio import DeviceFormat, Sink
from faced.devices.retry import Backoff, Health, Reporting
from faced.devices.wav import Floats, Pcm

log = logging.getLogger(__name__)

BLOCKS_PER_S: Final = 30
"""Slices per second of audio: the lip-sync rate, and how soon a flush takes effect."""
BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 2.0
"""A speaker that comes back plays again within about 2 s, however long it was away."""
ATTACK_S: Final = 0.02
"""Time constant of the envelope rising: the mouth opens with the syllable."""
RELEASE_S: Final = 0.12
"""Time constant of it falling: the mouth closes a little after the sound, not flickering."""
RMS_GAIN: Final = 3.5
"""Speech at an RMS of ~0.29 opens the mouth fully (the viewer's own lip sync uses the same)."""
_IDLE_WAIT_S: Final = 0.1
MAX_QUEUED_CHUNKS: Final = 4096
"""Tiny chunks cost more in bookkeeping than in samples: their number is bounded too."""


def volume_gain(volume: int, muted: bool) -> float:
    """Sample gain for a 0–100 volume: cubic, as ALSA/PulseAudio map their sliders, so the
    steps sound even (50 is about -18 dB); 100 is exactly 1."""
    if muted or volume <= 0:
        return 0.0
    return (min(volume, 100) / 100) ** 3


class Accepted(Enum):
    QUEUED = "queued"
    STALE = "stale"
    """The chunk belongs to a sequence a newer one replaced: not played."""
    DEVICE_DOWN = "device_down"
    """The sink is failing: not played (the face still gets the state changes)."""


class QueueFull(Exception):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ChunkTooLong(Exception):
    """A chunk that could not fit even in an empty queue."""


@dataclass
class _Item:
    pcm: Pcm
    seq: int
    tts: bool
    position: int = 0

    @property
    def remaining_s(self) -> float:
        return (self.pcm.frames - self.position) / self.pcm.rate

    @property
    def remaining_bytes(self) -> int:
        return (self.pcm.frames - self.position) * self.pcm.width * self.pcm.channels


@dataclass(frozen=True)
class Drained:
    """The queue ran dry: ``heard_at`` is when the last sample is heard (monotonic s);
    ``done`` is True when the sequence had been declared finished (audio-done, or TTS)."""

    seq: int
    done: bool
    heard_at: float


# Callbacks run on the event loop (the speaker posts them from its thread).
AmplitudeCallback = Callable[[float, float], None]  # (amplitude 0..1, heard at)
DrainedCallback = Callable[[Drained], None]


class Speaker(Reporting):
    def __init__(
        self,
        sink: Sink,
        device_format: DeviceFormat,
        *,
        max_queued_s: float,
        max_queued_bytes: int,
        volume: int = 100,
        muted: bool = False,
    ) -> None:
        self.sink = sink
        self.format = device_format
        self.max_queued_s = max_queued_s
        self.max_queued_bytes = max_queued_bytes
        self.volume = volume
        self.muted = muted
        self._gain = volume_gain(volume, muted)
        self._lock = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._queued_s = 0.0
        self._queued_bytes = 0
        self._seq = 0
        self._generation = 0
        self._done = False
        self._drain_reported = True
        self._device_ok = False
        self._stopping = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.on_amplitude: AmplitudeCallback | None = None
        self.on_drained: DrainedCallback | None = None
        # Writer-thread state.
        self._resampler: Any = None
        self._resampler_key: tuple[int, int] | None = None
        self._resampler_generation = 0
        self._envelope = 0.0
        self._playing = False
        self._playing_tts = False
        self._heard_end = 0.0
        self._latency_s = 0.0
        self._open_failed = False
        # Health (plain attributes: read from the event loop without the lock).
        self.health = Health()
        """Its ``reopens`` count failures: each one closes the sink, to be opened again."""
        self.chunks = 0
        self.played_s = 0.0
        self.dropped_chunks = 0
        self.flushed_s = 0.0
        self.underruns = 0
        """Times the queue ran dry mid-sequence: the agent's next chunk came too late."""

    # --- the event loop's side ----------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="speaker-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the writer to finish; ``join`` waits for it (call that off the loop)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def queued_s(self) -> float:
        return self._queued_s

    def busy_with_external(self) -> bool:
        """Agent audio is queued or still being heard."""
        with self._lock:
            queued = any(not item.tts for item in self._queue)
        return queued or (self._playing and not self._playing_tts)

    def new_sequence(self, seq: int) -> None:
        """Start sequence ``seq``: whatever is queued or playing is cut."""
        with self._lock:
            self._seq = seq
            self._flush_locked()
            self._done = False
            self._drain_reported = False
            self._lock.notify_all()

    def enqueue(self, pcm: Pcm, seq: int, *, tts: bool = False) -> Accepted:
        """Queue a chunk of sequence ``seq`` (a newer one starts that sequence). ``tts``
        marks faced's own speech: it ends its sequence, and agent audio replaces it."""
        if pcm.seconds > self.max_queued_s or len(pcm.data) > self.max_queued_bytes:
            raise ChunkTooLong(
                f"audio chunk too long: {pcm.seconds:.1f} s, {len(pcm.data)} bytes; the "
                f"speaker queues at most {self.max_queued_s:g} s (audio.max_queued_s) and "
                f"{self.max_queued_bytes} bytes"
            )
        with self._lock:
            if seq < self._seq:
                return Accepted.STALE
            if seq > self._seq:
                self._seq = seq
                self._flush_locked()
                self._done = False
            if not tts and any(item.tts for item in self._queue):
                self._flush_locked()  # the agent's own audio wins over faced's speech
                self._done = False
            if self.status == "error":  # while starting, the device is about to open
                self.dropped_chunks += 1
                return Accepted.DEVICE_DOWN
            if len(self._queue) >= MAX_QUEUED_CHUNKS:
                raise QueueFull(
                    f"audio queue full: {len(self._queue)} chunks queued, limit "
                    f"{MAX_QUEUED_CHUNKS}; send larger chunks",
                    retry_after_s=max(0.1, self._queued_s),
                )
            over_s = self._queued_s + pcm.seconds - self.max_queued_s
            over_bytes = self._queued_bytes + len(pcm.data) - self.max_queued_bytes
            if over_s > 0 or over_bytes > 0:
                # The queue drains in real time: the wait is how much must play first.
                wait = max(over_s, over_bytes / max(1, self._queued_bytes) * self._queued_s)
                raise QueueFull(
                    f"audio queue full: {self._queued_s:.1f} s queued, this chunk "
                    f"{pcm.seconds:.1f} s, limit {self.max_queued_s:g} s "
                    "(audio.max_queued_s); send chunks no faster than they play",
                    retry_after_s=wait,
                )
            self._queue.append(_Item(pcm, seq, tts))
            self._queued_s += pcm.seconds
            self._queued_bytes += len(pcm.data)
            self.chunks += 1
            if tts:
                self._done = True
            self._drain_reported = False
            self._lock.notify_all()
        return Accepted.QUEUED

    def done(self, seq: int) -> None:
        """Sequence ``seq`` has no more chunks: play out what is queued, then report."""
        with self._lock:
            if seq < self._seq:
                return
            if seq > self._seq:
                self._seq = seq
                self._flush_locked()
            self._done = True
            self._drain_reported = False
            self._lock.notify_all()

    def cancel_tts(self) -> None:
        with self._lock:
            if any(item.tts for item in self._queue) or self._playing_tts:
                self._flush_locked()
                self._done = False
                self._lock.notify_all()

    def set_volume(self, volume: int, muted: bool) -> None:
        self.volume = volume
        self.muted = muted
        self._gain = volume_gain(volume, muted)  # read once per block by the writer

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "status": self.status,
            "sink": self.sink.name,
            "rate": self.format.rate,
            "channels": self.format.channels,
            "latency_ms": round(self._latency_s * 1000, 1),
            "seq": self._seq,
            "playing": self._playing,
            "queued_s": round(self._queued_s, 2),
            "max_queued_s": self.max_queued_s,
            "chunks": self.chunks,
            "played_s": round(self.played_s, 2),
            "dropped_chunks": self.dropped_chunks,
            "flushed_s": round(self.flushed_s, 2),
            "underruns": self.underruns,
            "reopens": self.reopens,
            "volume": self.volume,
            "muted": self.muted,
        }
        if self.error is not None:
            report["error"] = self.error
        return report

    def _flush_locked(self) -> None:
        for item in self._queue:
            self.flushed_s += item.remaining_s
        self._queue.clear()
        self._queued_s = 0.0
        self._queued_bytes = 0
        self._generation += 1

    # --- the writer thread --------------------------------------------------------------

    def _post(self, callback: Callable[..., None] | None, *args: Any) -> None:
        loop = self._loop
        if callback is None or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: shutting down
            loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_FIRST_S, BACKOFF_MAX_S)
        try:
            while not self._stopping:
                if not self._device_ok:
                    try:
                        self.sink.open(self.format)
                    except Exception as exc:  # devices fail in many ways
                        self._failed(exc, "cannot open")
                        self._stop.wait(backoff.next())
                        continue
                    if self._open_failed:
                        self._recovered()
                    backoff.reset()
                    self._latency_s = self._sink_latency()
                    self.health.opened()
                    self._device_ok = True
                try:
                    self._step()
                except Exception as exc:
                    self._failed(exc, "failed")
                    self._stop.wait(backoff.next())
        finally:
            self.sink.close()

    def _recovered(self) -> None:
        self.health.working()
        log.info("speaker %s recovered", self.sink.name)
        self._open_failed = False

    def _sink_latency(self) -> float:
        try:
            return max(0.0, float(self.sink.latency_s()))
        except Exception:
            return 0.0

    def _failed(self, exc: Exception, what: str) -> None:
        """Log (once per reason until the device works again), report, close, flush."""
        reason = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
        self._open_failed = what == "cannot open"
        with self._lock:
            self._device_ok = False
            news = self.health.failed(reason)
            self._flush_locked()
            self._lock.notify_all()
        if news:
            log.error("speaker %s %s: %s; retrying", self.sink.name, what, reason)
        else:
            log.debug("speaker %s still failing: %s", self.sink.name, reason)
        self.sink.close()
        self.health.reopens += 1
        self._reset_stream()
        self._went_quiet()

    def _step(self) -> None:
        """Play one slice, or report that the queue ran dry, or wait a little."""
        with self._lock:
            if not self._queue:
                if self._playing or (self._done and not self._drain_reported):
                    drained: tuple[int, bool] | None = (self._seq, self._done)
                    if self._playing and not self._done:
                        self.underruns += 1
                    self._drain_reported = True
                else:
                    drained = None
                    self._lock.wait(_IDLE_WAIT_S)
                item = None
            else:
                item = self._queue[0]
                start = item.position
                stop = min(item.pcm.frames, start + max(1, item.pcm.rate // BLOCKS_PER_S))
                item.position = stop
                self._queued_s = max(0.0, self._queued_s - (stop - start) / item.pcm.rate)
                self._queued_bytes -= (stop - start) * item.pcm.width * item.pcm.channels
                if stop >= item.pcm.frames:
                    self._queue.popleft()
                if not self._queue:
                    self._queued_s = 0.0  # exactly: sums of float durations do not return to 0
                generation = self._generation
                self._playing_tts = item.tts
        if item is not None:
            samples = self._convert(item.pcm.floats(start, stop), item.pcm.rate, generation)
            self._play(samples, generation)
        elif drained is not None:
            self._ran_dry(*drained)

    def _ran_dry(self, seq: int, done: bool) -> None:
        if self._resampler_generation != self._generation:
            self._reset_stream()  # what it holds belongs to flushed audio
        if self._resampler is not None:  # the last ~30 ms the resampler still holds
            tail = self._resampler.resample_chunk(
                np.zeros((0, self.format.channels), np.float32), last=True
            )
            self._reset_stream()
            self._play(np.asarray(tail, np.float32), self._generation)
        self._went_quiet()
        self._post(self.on_drained, Drained(seq, done, max(self._heard_end, time.monotonic())))

    def _went_quiet(self) -> None:
        if self._playing:
            self._playing = False
            self._playing_tts = False
            self._envelope = 0.0
            self._post(self.on_amplitude, 0.0, max(self._heard_end, time.monotonic()))

    def _reset_stream(self) -> None:
        self._resampler = None
        self._resampler_key = None

    def _convert(self, samples: Floats, rate: int, generation: int) -> Floats:
        if self._resampler is not None and self._resampler_generation != generation:
            self._reset_stream()  # a flush came between: its held samples are not wanted
        channels = self.format.channels
        if samples.shape[1] != channels:
            if channels == 1:
                samples = samples.mean(axis=1, keepdims=True, dtype=np.float32)
            else:
                samples = np.repeat(samples[:, :1], channels, axis=1)
        if rate == self.format.rate:
            if self._resampler is not None:  # a run of another rate ended: keep its tail
                tail = self._resampler.resample_chunk(
                    np.zeros((0, channels), np.float32), last=True
                )
                self._reset_stream()
                samples = np.concatenate([np.asarray(tail, np.float32), samples])
            return samples
        key = (rate, channels)
        if self._resampler_key != key:
            tail = None
            if self._resampler is not None:
                tail = self._resampler.resample_chunk(
                    np.zeros((0, channels), np.float32), last=True
                )
            self._resampler = soxr.ResampleStream(rate, self.format.rate, channels, "float32")
            self._resampler_key = key
            self._resampler_generation = generation
            converted = np.asarray(self._resampler.resample_chunk(samples), np.float32)
            if tail is not None and len(tail):
                converted = np.concatenate([np.asarray(tail, np.float32), converted])
            return converted
        return np.asarray(self._resampler.resample_chunk(samples), np.float32)

    def _play(self, samples: Floats, generation: int) -> None:
        if generation != self._generation:
            self._reset_stream()  # flushed while converting: the resampler held old audio
            return
        frames = len(samples)
        if frames == 0:
            return
        duration = frames / self.format.rate
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float32))))
        target = min(1.0, rms * RMS_GAIN)
        tau = ATTACK_S if target > self._envelope else RELEASE_S
        self._envelope += (target - self._envelope) * (1.0 - math.exp(-duration / tau))
        gain = self._gain
        scaled = samples * np.float32(32768.0 * gain) if gain != 1.0 else samples * 32768.0
        pcm = np.clip(np.rint(scaled), -32768, 32767).astype("<i2").tobytes()
        self.sink.write(pcm)
        if self.health.failing:
            self._recovered()  # it opened before; now it also plays
        heard_at = time.monotonic() + self._latency_s
        self._latency_s = self._sink_latency()
        self._playing = True
        self._heard_end = heard_at + duration
        self.played_s += duration
        self._post(self.on_amplitude, round(self._envelope, 3), heard_at)


__all__ = [
    "BLOCKS_PER_S",
    "Accepted",
    "ChunkTooLong",
    "Drained",
    "QueueFull",
    "Speaker",
    "volume_gain",
]
