"""The box's voice: agent audio and faced's own speech on its speaker, lip sync, volume.

Owns: ``SpeakerService``, the component between the Open Face service (faced.openface)
and the speaker device (faced.devices.speaker), its text-to-speech fallback
(faced.devices.tts) and the persisted volume. Does not own: the routes
(faced.api.speaker), the device's thread and queue. Why apart from the device: what plays
when, and what the mouth does meanwhile, is the face's business, not the sound card's.
With ``audio.sink = none`` faced owns no speaker: ``/api/audio`` stays a relay to the
viewers, which play it.

Otherwise, in flow order:

* ``POST /api/audio`` hands each chunk to ``intake`` before the viewers get it
  (faced.openface): not a playable WAV → 400 naming the problem, a chunk longer than
  the queue → 413, a full queue → 429 with ``Retry-After``; nothing queued in those cases,
  and what plays is undisturbed.
* The rest comes from the Open Face hub as an observer (it never publishes from there):
  ``audio-seq`` starts a sequence (flushing the old one), ``audio-done`` lets it drain, and
  a ``speaking`` state with ``text`` arms the TTS fallback: after ``audio.tts.grace_s``
  (at once when the speak said ``expectAudio: false``) with no chunk come, espeak-ng
  (faced.devices.tts) speaks the text through the same queue. Agent audio always wins: a
  chunk cancels speech being synthesized or played.
* The writer thread (faced.devices.speaker) reports each block's envelope with the time it
  will be heard; the value is published then, as an ``amplitude`` state update through the
  Open Face writer, like POST /api/state — so the kiosk's mouth moves with the sound heard.
  While audio plays the speaker owns the mouth: a value someone else sets is corrected at
  the next block (~33 ms), and ``OpenFace.audio_playing`` (which gaze follow's mirror
  obeys) holds until the last sample is heard, not only until audio-done.
* When a finished sequence (audio-done, or the end of faced's speech) has been heard to the
  end, a face still ``speaking`` returns to the state it had before it started speaking,
  with the mouth closed.

The volume (0–100, muted) is applied to the samples and persists in ``<state dir>/audio.json``
(faced.state), so it survives restarts; ``audio.volume`` is the start value
until one is set.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
from aiohttp import web

from faced.api.errors import ApiError
from faced.config import Config
from faced.devices.audio import DeviceFormat, make_sink
from faced.devices.speaker import Accepted, ChunkTooLong, Drained, QueueFull, Speaker
from faced.devices.tts import PROGRAM, Espeak, TtsError, clip_text
from faced.devices.wav import WavError, parse_wav
from faced.openface import OpenFace
from faced.schemas.audio import Volume, VolumeUpdate
from faced.schemas.face_state import (
    AudioDoneMessage,
    AudioSeqMessage,
    StateMessage,
    StateUpdate,
)
from faced.state import StateFile, state_dir

log = logging.getLogger(__name__)

STATE_FILE: Final = "audio.json"
MAX_QUEUED_BYTES: Final = 32 * 1024 * 1024
"""Besides audio.max_queued_s: 60 s of 192 kHz stereo 32-bit would be 92 MB."""
AMPLITUDE_STEP: Final = 0.01
"""Smaller changes of the mouth are not worth a broadcast."""
STOP_TIMEOUT_S: Final = 2.0


class SpeakerService:
    """The speaker (or none), the TTS fallback and the volume, wired to the Open Face writer."""

    def __init__(self, config: Config, openface: OpenFace) -> None:
        self.config = config.audio
        self.openface = openface
        self.state_file = StateFile(state_dir(config), STATE_FILE, Volume, fallback="audio.volume")
        self.volume = Volume(volume=config.audio.volume, muted=False)
        sink = make_sink(config.audio.sink)
        self.speaker: Speaker | None = None
        if sink is not None:
            self.speaker = Speaker(
                sink,
                DeviceFormat(rate=config.audio.rate, channels=config.audio.channels),
                max_queued_s=config.audio.max_queued_s,
                max_queued_bytes=MAX_QUEUED_BYTES,
                volume=config.audio.volume,
            )
            self.speaker.on_amplitude = self._on_amplitude
            self.speaker.on_drained = self._on_drained
        tts_config = config.audio.tts
        self.tts = Espeak(tts_config) if sink is not None and tts_config.enabled else None
        self.tts_status = "starting" if self.tts is not None else "off"
        self.tts_reason: str | None = None
        self.tts_spoken = 0
        self.tts_cancelled = 0
        self.tts_failed = 0
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tts_task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._chunks = 0
        self._last_chunk_at = -math.inf
        self._expect_audio = True
        self._last_state = openface.model.state.state
        self._before_speaking = "idle"

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        persisted = await self.state_file.load()
        if persisted is not None:
            self.volume = persisted
        if self.speaker is None:
            return
        self.speaker.set_volume(self.volume.volume, self.volume.muted)
        if self.tts is not None:
            self._spawn(self._check_tts(self.tts), "speaker-tts-check")
        self.speaker.start(asyncio.get_running_loop())
        log.info(
            "speaker %s at %d Hz, %d channel(s), volume %d%s",
            self.speaker.sink.name,
            self.config.rate,
            self.config.channels,
            self.volume.volume,
            " (muted)" if self.volume.muted else "",
        )

    async def stop(self) -> None:
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.speaker is not None:
            self.speaker.stop()
            await asyncio.to_thread(self.speaker.join, STOP_TIMEOUT_S)

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context, after the Open Face service's: takes /api/audio's chunks and
        the hub's messages when there is a speaker; started at startup, stopped at
        cleanup."""
        del app
        openface = self.openface
        if self.speaker is not None:
            openface.audio_intake = self.intake
            openface.hub.observers.append(self.observe)
        await self.start()
        try:
            yield
        finally:
            await self.stop()
            if self.speaker is not None:
                openface.hub.observers.remove(self.observe)
                openface.audio_intake = None

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- agent audio --------------------------------------------------------------------

    def intake(self, seq: int, data: bytes) -> None:
        """A /api/audio chunk, before the viewers get it: queued, or an ``ApiError``."""
        speaker = self.speaker
        assert speaker is not None  # only installed when there is a speaker
        try:
            pcm = parse_wav(data)
        except WavError as exc:
            raise ApiError(400, str(exc), extra={"field": "data"}) from None
        self._cancel_tts("agent audio arrived")
        try:
            accepted = speaker.enqueue(pcm, seq)
        except ChunkTooLong as exc:
            raise ApiError(413, str(exc)) from None
        except QueueFull as exc:
            retry = max(1, math.ceil(exc.retry_after_s))
            raise ApiError(
                429,
                str(exc),
                headers={"Retry-After": str(retry)},
                extra={"retry_after_s": round(exc.retry_after_s, 2)},
            ) from None
        self._chunks += 1
        self._last_chunk_at = time.monotonic()
        if accepted is not Accepted.QUEUED:
            log.debug("audio chunk of seq %d not played: %s", seq, accepted.value)

    def observe(self, message: Any) -> None:
        """Every message the Open Face hub publishes (quick; never publishes itself)."""
        speaker = self.speaker
        if speaker is None or self.closing:
            return
        if isinstance(message, StateMessage):
            state = message.state
            if state == "speaking" and self._last_state != "speaking":
                self._before_speaking = self._last_state
            self._last_state = state
            expect_audio, self._expect_audio = self._expect_audio, True
            if state == "speaking" and message.text:
                self._arm_tts(message.text, expect_audio)
        elif isinstance(message, AudioSeqMessage):
            self._cancel_tts("a new audio sequence")
            self._expect_audio = message.expect_audio
            speaker.new_sequence(message.seq)
        elif isinstance(message, AudioDoneMessage):
            speaker.done(message.seq)

    # --- lip sync and the end of a sequence (called on the loop by the writer thread) ---

    def _at(self, heard_at: float, callback: Any, *args: Any) -> None:
        delay = heard_at - time.monotonic()
        if delay > 0.001:
            asyncio.get_running_loop().call_later(delay, callback, *args)
        else:
            callback(*args)

    def _on_amplitude(self, value: float, heard_at: float) -> None:
        self._at(heard_at, self._publish_amplitude, value)

    def _publish_amplitude(self, value: float) -> None:
        if self.closing:
            return
        if value > 0.0:
            # Sound is being heard: gaze follow's mirror leaves the mouth alone (it reads
            # this), also after an early audio-done while the queue still plays out.
            self.openface.audio_chunk()
        current = self.openface.model.state.amplitude
        if abs(current - value) < AMPLITUDE_STEP and (value != 0.0 or current == 0.0):
            return
        self.openface.apply_playback(StateUpdate(amplitude=value))

    def _on_drained(self, drained: Drained) -> None:
        self._at(drained.heard_at, self._finish, drained)

    def _finish(self, drained: Drained) -> None:
        if self.closing:
            return
        self.openface.audio_done()  # nothing is heard any more: the mouth is free
        speaker = self.speaker
        state = self.openface.model.state
        finished = drained.done and speaker is not None and drained.seq == speaker.seq
        if finished and state.state == "speaking" and not (speaker and speaker.queued_s):
            previous = self._before_speaking
            back = previous if previous != "speaking" else "idle"
            log.debug("audio sequence %d heard to the end; face back to %s", drained.seq, back)
            self.openface.apply_playback(StateUpdate(state=back, amplitude=0.0))  # type: ignore[arg-type]
        elif state.amplitude != 0.0:
            self.openface.apply_playback(StateUpdate(amplitude=0.0))

    # --- text to speech -----------------------------------------------------------------

    async def _check_tts(self, tts: Espeak) -> None:
        """Find espeak-ng and try the configured voice once (in the background: startup
        does not wait for a process): a missing program or voice is one warning."""
        if await tts.find() is None:
            self.tts_status = "off"
            self.tts_reason = f"{PROGRAM} is not installed (apt-get install {PROGRAM})"
            log.warning("text to speech unavailable: %s", self.tts_reason)
            return
        try:
            await tts.synthesize("a", max_bytes=64 * 1024)
        except TtsError as exc:
            self.tts_status = "error"
            self.tts_reason = f"audio.tts.voice = {tts.config.voice!r}: {exc}"
            log.warning("text to speech unavailable: %s", self.tts_reason)
            return
        self.tts_status = "ok"

    def _arm_tts(self, text: str, expect_audio: bool) -> None:
        if self.tts is None or self.tts_status != "ok":
            return
        speaker = self.speaker
        assert speaker is not None
        self._cancel_tts("newer text")
        grace = self.config.tts.grace_s
        if speaker.busy_with_external() or time.monotonic() - self._last_chunk_at < grace:
            return  # agent audio is flowing: the text is its subtitle
        seq = max(self.openface.model.audio_seq, speaker.seq)  # chunks may name a later seq
        delay = grace if expect_audio else 0.0
        self._tts_task = self._spawn(self._speak(text, seq, self._chunks, delay), "speaker-tts")

    def _cancel_tts(self, why: str) -> None:
        task, self._tts_task = self._tts_task, None
        if task is not None and not task.done():
            task.cancel()
            self.tts_cancelled += 1
            log.debug("speech cancelled: %s", why)
        if self.speaker is not None and why in ("agent audio arrived", "newer text"):
            self.speaker.cancel_tts()  # speech already queued or playing stops too

    async def _speak(self, text: str, seq: int, chunks: int, delay: float) -> None:
        assert self.tts is not None and self.speaker is not None
        if delay:
            await asyncio.sleep(delay)
        if self._chunks != chunks:
            return
        spoken = clip_text(text, self.config.tts.max_chars)
        if not spoken:
            return
        try:
            wav = await self.tts.synthesize(spoken, max_bytes=self.speaker.max_queued_bytes)
            pcm = parse_wav(wav)
        except (TtsError, WavError) as exc:
            self.tts_failed += 1
            log.warning("text to speech failed: %s", exc)
            return
        if self._chunks != chunks:
            return  # agent audio came while espeak-ng ran
        try:
            accepted = self.speaker.enqueue(pcm, seq, tts=True)
        except (QueueFull, ChunkTooLong) as exc:
            log.warning("speech not played: %s", exc)
            return
        if accepted is Accepted.QUEUED:
            self.tts_spoken += 1
            log.info("speaking %d characters with %s (%.1f s)", len(spoken), PROGRAM, pcm.seconds)

    # --- volume -------------------------------------------------------------------------

    async def set_volume(self, update: VolumeUpdate) -> Volume:
        async with self._write_lock:  # writes land in request order
            current = self.volume
            volume = Volume(
                volume=current.volume if update.volume is msgspec.UNSET else update.volume,
                muted=current.muted if update.muted is msgspec.UNSET else update.muted,
            )
            await self.state_file.save(volume, "the volume")
            self.volume = volume
        if self.speaker is not None:
            self.speaker.set_volume(volume.volume, volume.muted)
        log.info("volume %d%s", volume.volume, " (muted)" if volume.muted else "")
        return volume

    # --- health -------------------------------------------------------------------------

    def speaker_report(self) -> dict[str, Any]:
        if self.speaker is None:
            return {"status": "off", "sink": "none"}
        return self.speaker.report()

    def tts_report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"status": self.tts_status, "enabled": self.tts is not None}
        if self.tts is not None:
            tts = self.config.tts
            report.update(
                available=self.tts.path is not None,
                voice=tts.voice,
                spoken=self.tts_spoken,
                cancelled=self.tts_cancelled,
                failed=self.tts_failed,
            )
        if self.tts_reason is not None:
            report["reason"] = self.tts_reason
        return report


__all__ = ["STATE_FILE", "SpeakerService"]
