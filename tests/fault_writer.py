"""A writer to kill: saves one persisted setting over and over, the way the daemon does.

Run as ``python -m tests.fault_writer KIND DIRECTORY`` (tests.helpers.kill_writes drives it).
It imports faced once, prints ``ready``, then for each ``go`` line on stdin forks a child
that announces ``pid N`` and then, for n = the file's value + 1, + 2, …, prints ``n`` and
saves value n with faced's own writer; the test kills the child with SIGKILL at a random
moment, this process reaps it and prints ``dead``. Forking a process that has already
imported faced makes each of the 50 kills cost milliseconds instead of an interpreter start.

Each KIND is one file of the state directory, written and read by the same code as the
daemon's (``faced.state.StateFile`` / ``write_atomically``, ``read_persisted_layer``).
A new kind (e.g. the jobs' database) is one ``Kind`` in ``KINDS``: how to save value n, and
how to read the value back (None: no file yet; an exception: the file is damaged).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from faced import calibration, face_packs, voice
from faced.calibration import Neutral
from faced.config.layers import PERSISTED_LAYER_FILE, read_persisted_layer
from faced.schemas.audio import Volume
from faced.schemas.presets import ViewerConfig
from faced.state import StateFile, write_atomically


@dataclass(frozen=True)
class Kind:
    save: Callable[[Path, int], None]
    """Save value n (the child's n-th write), as the daemon would."""
    read: Callable[[Path], int | None]
    """The saved value; None: nothing saved yet; raises: the file is damaged."""
    stored: Callable[[int], int] = lambda n: n
    """What ``read`` returns once value n is saved (the volume keeps n % 101)."""


def _state_file(directory: Path, name: str, kind: type[msgspec.Struct]) -> StateFile[Any]:
    return StateFile(directory, name, kind, fallback="nothing")


def _strict_read(setting: StateFile[Any]) -> Any:
    # StateFile.read() turns a damaged file into None with a warning; here damage must fail.
    if not setting.path.exists():
        return None
    value = setting.read()
    if value is None:
        raise ValueError(f"{setting.path} does not parse: {setting.path.read_bytes()[:80]!r}")
    return value


def _face(directory: Path) -> StateFile[Any]:
    return _state_file(directory, face_packs.STATE_FILE, ViewerConfig)


def _volume(directory: Path) -> StateFile[Any]:
    return _state_file(directory, voice.STATE_FILE, Volume)


def _neutral(directory: Path) -> StateFile[Any]:
    return _state_file(directory, calibration.STATE_FILE, Neutral)


def _read_face(directory: Path) -> int | None:
    value = _strict_read(_face(directory))
    return None if value is None else int(value.face.removeprefix("pack-"))


def _read_volume(directory: Path) -> int | None:
    value = _strict_read(_volume(directory))
    return None if value is None else int(value.volume)


def _read_neutral(directory: Path) -> int | None:
    value = _strict_read(_neutral(directory))
    return None if value is None else int(value.frames)


def _neutral_value(n: int) -> Neutral:
    # Every ARKit name, as a real calibration writes: a file of a few kilobytes.
    shapes = {f"shape{i:02d}": (n % 1000) / 1000 for i in range(52)}
    return Neutral(blendshapes=shapes, frames=n, seconds=2.0, ts=n)


def _save_layer(directory: Path, n: int) -> None:
    layer = {"limits": {"max_viewers": n}, "display": {"dim_after_s": 60}}
    write_atomically(directory / PERSISTED_LAYER_FILE, msgspec.json.encode(layer), 0o600)


def _read_layer(directory: Path) -> int | None:
    path = directory / PERSISTED_LAYER_FILE
    if not path.exists():
        return None
    return int(read_persisted_layer(path)["limits"]["max_viewers"])


KINDS: dict[str, Kind] = {
    "face": Kind(lambda d, n: _face(d).write(ViewerConfig(face=f"pack-{n}")), _read_face),
    "volume": Kind(
        lambda d, n: _volume(d).write(Volume(volume=n % 101, muted=False)),
        _read_volume,
        lambda n: n % 101,
    ),
    "calibration": Kind(lambda d, n: _neutral(d).write(_neutral_value(n)), _read_neutral),
    "settings": Kind(_save_layer, _read_layer),
}


def _child(kind: Kind, directory: Path) -> None:
    out = sys.stdout
    out.write(f"pid {os.getpid()}\n")
    out.flush()
    n = (kind.read(directory) or 0) + 1
    while True:
        out.write(f"{n}\n")
        out.flush()  # announced before the write starts: the file holds n - 1 or n
        kind.save(directory, n)
        n += 1


def main(argv: list[str]) -> int:
    kind, directory = KINDS[argv[0]], Path(argv[1])
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        pid = os.fork()
        if pid == 0:
            try:
                _child(kind, directory)
            finally:
                os._exit(1)
        os.waitpid(pid, 0)
        print("dead", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
