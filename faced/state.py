"""The state directory and the settings kept in it: what an API change leaves for the next start.

Owns: where the state directory is (``server.state_dir``, else systemd's
``$STATE_DIRECTORY``, else ``~/.local/state/faced``), writing a file atomically and durably
(a power cut leaves the old file or the new one, never half, and a write that returned is
on disk), and reading and writing one setting as a msgspec Struct in JSON. Does not own:
what the settings mean (faced.face_packs keeps the viewer's face pack, faced.voice the
volume). Why: the appliance is switched off at the wall; every persisted setting must
survive that the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from faced.api.errors import ApiError
from faced.config import Config, resolve_state_dir

log = logging.getLogger(__name__)

S = TypeVar("S", bound=msgspec.Struct)


def state_dir(config: Config) -> Path:
    """Where API-changed settings persist (see ``server.state_dir``)."""
    return resolve_state_dir(config.server.state_dir, os.environ)


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader, or the next boot, sees the old file or
    the new one: a temporary file beside it, flushed to disk, renamed over it, and the
    rename flushed too. Blocking: call it in a worker thread from the event loop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is; some file systems cannot
    # open a directory for that, and then the rename's own ordering is all there is.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class StateFile(Generic[S]):
    """One setting of the state directory: a Struct in a JSON file."""

    def __init__(self, directory: Path, name: str, kind: type[S], *, fallback: str) -> None:
        self.path = directory / name
        self._kind = kind
        self._fallback = fallback
        """What is used when the file cannot be read (for the warning)."""

    def read(self) -> S | None:
        """The setting, or None when there is none or it cannot be read (a warning then).
        Blocking: see ``load``."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read %s: %s; using %s", self.path, exc, self._fallback)
            return None
        try:
            return msgspec.json.decode(raw, type=self._kind)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            log.warning("ignoring %s: %s", self.path, exc)
            return None

    def write(self, value: S) -> None:
        """Persist ``value`` atomically (OSError when it cannot). Blocking: see ``save``."""
        write_atomically(self.path, msgspec.json.encode(value))

    async def load(self) -> S | None:
        import asyncio  # noqa: PLC0415  (`faced analyze` reads models without an event loop)

        return await asyncio.to_thread(self.read)

    async def save(self, value: S, what: str) -> None:
        """Persist ``value``; when the disk refuses, log it and answer the request with a 500
        naming the directory, so a client never believes a setting survives a restart when
        it does not. ``what`` names the setting in the log ("the volume")."""
        try:
            import asyncio  # noqa: PLC0415

            await asyncio.to_thread(self.write, value)
        except OSError as exc:
            log.error("cannot persist %s to %s: %s", what, self.path, exc)
            raise ApiError(
                500, f"cannot save the setting in {self.path.parent}: {exc.strerror}"
            ) from None


__all__ = ["StateFile", "state_dir", "write_atomically"]
