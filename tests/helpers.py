"""Small helpers the test modules share: waiting for a condition, running code as another user.

``until`` polls a condition
on the event loop and fails naming it, instead of a fixed sleep. ``shared_dir`` and
``python_for`` serve the tests that run something as another user (``nobody``, ``daemon``):
the checkout may live under a directory only its owner can enter (a clone in ``~``, mode
0700), and so may pytest's tmp_path and this venv's interpreter; such a test copies what
the other user must run into a directory anyone may read and gives them a python they can
execute.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

SYSTEM_PYTHON: Final = "/usr/bin/python3"


async def until(
    condition: Callable[[], bool | Awaitable[bool]],
    seconds: float = 10.0,
    *,
    interval: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll ``condition`` (a plain or an async callable) until it is true; fail after
    ``seconds`` naming ``what``."""
    deadline = time.monotonic() + seconds
    while True:
        met = condition()
        if inspect.isawaitable(met):
            met = await met
        if met:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {seconds} s")
        await asyncio.sleep(interval)


@contextlib.contextmanager
def shared_dir(prefix: str = "faced-shared-") -> Iterator[Path]:
    """A fresh directory under the system's temp directory that every user may enter and
    read (mode 0755), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def copy_readable(source: Path, into: Path) -> Path:
    """``source`` (a file or a tree, without bytecode caches) copied into ``into``, every
    directory 0755 and every file readable by all, executables kept executable."""
    target = into / source.name
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(source, target)
    for path in [target, *target.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(path.stat().st_mode | 0o444)
    return target


def python_for(as_user: list[str]) -> str:
    """An interpreter the command prefix ``as_user`` (``setpriv ... --``) can run: this
    venv's base interpreter when that user can reach it, else the system's python3. The
    child gets no site-packages of ours (they may sit in a directory it cannot enter), so
    what it runs must need only the standard library and what is copied for it."""
    candidates = [str(Path(sys._base_executable).resolve()), SYSTEM_PYTHON]
    for candidate in candidates:
        probe = subprocess.run(
            [*as_user, candidate, "-c", "pass"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0:
            return candidate
    raise AssertionError(f"no python the other user can run among {candidates}")


def write_face_then_nobody(
    path: Path, face_rgb: Any, face_frames: int, nobody_frames: int = 120
) -> Path:
    """A 30 fps clip: ``face_frames`` of one still frame (RGB) showing a face, then
    ``nobody_frames`` of the empty background; the ``file:`` camera loops it, so the person
    keeps arriving and leaving."""
    import cv2  # noqa: PLC0415 - only the clip-making tests pay for OpenCV
    import numpy as np  # noqa: PLC0415

    from faced.vision.synthetic import BACKGROUND_RGB, DEFAULT_SIZE  # noqa: PLC0415

    face = cv2.cvtColor(face_rgb, cv2.COLOR_RGB2BGR)
    empty = np.empty_like(face)
    empty[:] = BACKGROUND_RGB[::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, DEFAULT_SIZE)
    try:
        for index in range(face_frames + nobody_frames):
            writer.write(face if index < face_frames else empty)
    finally:
        writer.release()
    return path


def run_seconds(short: float, long: float) -> float:
    """A fuzz or soak test's budget: ``short`` in `make test`, ``long`` under `make fuzz` or
    `make soak` (they set FACED_LONG_RUNS=1), so both run the very same test."""
    return long if os.environ.get("FACED_LONG_RUNS") == "1" else short
