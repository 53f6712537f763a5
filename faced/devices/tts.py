"""Text to speech on the box: espeak-ng, run as a subprocess, answering a WAV.

Owns running espeak-ng safely (bounded output, timeout, cancellation) for one text.
Does not own playing its WAV (faced.devices.speaker).
Why: the box speaks on its own when an agent sends text, not audio.

``Espeak.find()`` looks the program up (off the event loop);
``Espeak.synthesize(text)`` runs ``espeak-ng --stdout --stdin -v VOICE -s RATE -p PITCH``
with the text on stdin (never on the command line, so no text is read as an option) and
answers the WAV it writes — at most ``max_bytes`` of it (the process is killed beyond) and
within a timeout. Cancelling the call kills the process. The WAV then goes through the
speaker's ordinary playback path (faced.voice), so lip sync works for it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from typing import Final

from faced.config import TtsConfig

log = logging.getLogger(__name__)

PROGRAM: Final = "espeak-ng"
TIMEOUT_S: Final = 30.0
_SPACE: Final = re.compile(r"\s+")


class TtsError(Exception):
    """espeak-ng failed; the message says how."""


def clip_text(text: str, max_chars: int) -> str:
    """``text`` with runs of whitespace collapsed, cut at a word boundary to ``max_chars``."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


class Espeak:
    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self.path: str | None = None

    async def find(self) -> str | None:
        self.path = await asyncio.to_thread(shutil.which, PROGRAM)
        return self.path

    async def synthesize(self, text: str, max_bytes: int) -> bytes:
        if self.path is None:
            raise TtsError(f"{PROGRAM} is not installed")
        config = self.config
        process = await asyncio.create_subprocess_exec(
            self.path,
            "--stdout",
            "--stdin",
            "-v",
            config.voice,
            "-s",
            str(config.rate),
            "-p",
            str(config.pitch),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await self._collect(process, text, max_bytes)
        except TimeoutError:
            raise TtsError(f"{PROGRAM} took longer than {TIMEOUT_S:g} s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def _collect(
        self, process: asyncio.subprocess.Process, text: str, max_bytes: int
    ) -> bytes:
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        process.stdin.write(text.encode("utf-8") + b"\n")
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        process.stdin.close()
        errors = asyncio.ensure_future(process.stderr.read(4096))
        output = bytearray()
        truncated = False
        while chunk := await process.stdout.read(64 * 1024):
            output += chunk
            if len(output) >= max_bytes:
                # Longer than the speaker would queue: keep what fits (whole frames are
                # trimmed by the WAV reader) and stop the process.
                del output[max_bytes:]
                truncated = True
                process.kill()
                break
        returncode = await process.wait()
        message = (await errors).decode(errors="replace").strip()
        if truncated:
            log.warning("speech cut at %d bytes (the speaker's queue limit)", max_bytes)
        elif returncode != 0:
            raise TtsError(f"{PROGRAM} exited with {returncode}: {message or 'no message'}")
        if not output:
            raise TtsError(f"{PROGRAM} produced no audio: {message or 'no message'}")
        return bytes(output)


__all__ = ["PROGRAM", "Espeak", "TtsError", "clip_text"]
