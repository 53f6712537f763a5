"""The state directory and the settings kept in it: what an API change leaves for the next start.

Owns: where the state directory is (``server.state_dir``, else systemd's
``$STATE_DIRECTORY``, else ``~/.local/state/faced``), writing a file atomically and durably
(a power cut leaves the old file or the new one, never half, and a write that returned is
on disk, and the temporary a write cut short leaves is removed by a later write), and
reading and writing one setting as a msgspec Struct in JSON. Does not own:
what the settings mean (faced.face_packs keeps the viewer's face pack, faced.voice the
volume). Why: the appliance is switched off at the wall; every persisted setting must
survive that the same way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time
from glob import escape as glob_escape
from pathlib import Path
from typing import Generic, TypeVar

import msgspec

from faced.api.errors import ApiError
from faced.config import Config, resolve_state_dir

log = logging.getLogger(__name__)

S = TypeVar("S", bound=msgspec.Struct)

STALE_TEMPORARY_S = 60.0
"""A temporary this old is what a killed write left (a write takes well under a second
even on a slow SD card); younger ones may belong to a write still in progress."""
_TEMPORARY_SUFFIX = re.compile(r"[a-z0-9_]{8}")
"""What tempfile.mkstemp adds to the prefix."""


def state_dir(config: Config) -> Path:
    """Where API-changed settings persist (see ``server.state_dir``)."""
    return resolve_state_dir(config.server.state_dir, os.environ)


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that a reader, or the next boot, sees the old file or
    the new one: a temporary file beside it, flushed to disk, renamed over it, and the
    rename flushed too. Blocking: call it in a worker thread from the event loop."""
    import tempfile  # noqa: PLC0415  (tempfile imports random: not on every command's start)

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
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    # A power cut or kill -9 mid-write leaves its temporary behind; each later write of the
    # same file removes those, so a box switched off at the wall does not fill up with them.
    prefix = f".{path.name}."
    now = time.time()
    for candidate in path.parent.glob(f".{glob_escape(path.name)}.*"):
        suffix = candidate.name[len(prefix) :]
        if not _TEMPORARY_SUFFIX.fullmatch(suffix):
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
            if now - candidate.lstat().st_mtime > STALE_TEMPORARY_S:
                candidate.unlink()


def _sync_directory(directory: Path) -> None:
    # The rename is only durable once the directory entry is; some file systems cannot
    # open a directory for that, and then the rename's own ordering is all there is.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def save_refused(exc: OSError, what: str) -> ApiError:
    """The answer to a request whose setting the disk refused: 507 (Insufficient Storage)
    when the disk or the quota is full — the client may retry once space is freed — else
    500; the sentence names the directory and the system's reason."""
    status = 507 if exc.errno in DISK_FULL else 500
    return ApiError(status, f"cannot save {what}: {exc.strerror}")


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
        """Persist ``value``; when the disk refuses, log it and answer the request with a 507
        (disk full) or 500 naming the directory (``save_refused``), so a client never
        believes a setting survives a restart when it does not; the file keeps the previous
        value. ``what`` names the setting in the log ("the volume")."""
        try:
            import asyncio  # noqa: PLC0415

            await asyncio.to_thread(self.write, value)
        except OSError as exc:
            log.error("cannot persist %s to %s: %s", what, self.path, exc)
            raise save_refused(exc, f"the setting in {self.path.parent}") from None


__all__ = ["DISK_FULL", "StateFile", "save_refused", "state_dir", "write_atomically"]
