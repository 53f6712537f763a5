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
from dataclasses import dataclass
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
    """faced.vision.synthetic.write_face_then_nobody, imported only by the tests that make
    such a clip (OpenCV is not every test's cost)."""
    from faced.vision.synthetic import write_face_then_nobody as write  # noqa: PLC0415

    return write(path, face_rgb, face_frames, nobody_frames)


def run_seconds(short: float, long: float) -> float:
    """A fuzz or soak test's budget: ``short`` in `make test`, ``long`` under `make fuzz` or
    `make soak` (they set FACED_LONG_RUNS=1), so both run the very same test."""
    return long if os.environ.get("FACED_LONG_RUNS") == "1" else short


@dataclass(frozen=True)
class KillReport:
    """What ``kill_writes`` saw: how many kills, and how many left a write half done."""

    kills: int
    mid_write: int
    """Kills that left a temporary file behind (the write had begun and not finished)."""


def kill_writes(kind: str, directory: Path, *, runs: int = 50, seed: int = 20) -> KillReport:
    """Save one persisted setting (``tests.fault_writer``'s KIND) in a loop and ``kill -9``
    the writer at a random moment, ``runs`` times; after each kill the file must parse and
    hold the value of the last write begun or the one before it (old or new, never half).
    Fails naming the run. A new persisted file (the jobs' database) is one more ``Kind`` in
    tests/fault_writer.py and one call of this."""
    import random  # noqa: PLC0415
    import select  # noqa: PLC0415
    import signal  # noqa: PLC0415

    from tests.fault_writer import KINDS  # noqa: PLC0415

    spec = KINDS[kind]
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_writer", kind, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdin is not None and writer.stdout is not None
    stdin, stdout = writer.stdin, writer.stdout
    mid_write = 0
    try:
        assert stdout.readline().strip() == "ready"
        for run in range(runs):
            before = spec.read(directory)
            temporaries = set(directory.glob(".*"))
            stdin.write("go\n")
            stdin.flush()
            pid = int(stdout.readline().split()[1])
            # A delay from nothing (before the first write) to a few writes' worth.
            select.select([], [], [], rng.uniform(0, 0.03))
            os.kill(pid, signal.SIGKILL)
            announced: list[int] = []
            for line in stdout:
                if line.strip() == "dead":
                    break
                announced.append(int(line))
            try:
                value = spec.read(directory)
            except Exception as exc:
                raise AssertionError(f"run {run}: the {kind} file is damaged: {exc}") from None
            # The file holds the last write begun, or what was there before that write.
            allowed = {before}
            if announced:
                allowed = {spec.stored(announced[-1])}
                allowed.add(spec.stored(announced[-2]) if len(announced) > 1 else before)
            assert value in allowed, f"run {run}: {kind} holds {value}, expected one of {allowed}"
            mid_write += bool(set(directory.glob(".*")) - temporaries)
    finally:
        stdin.close()
        writer.kill()
        writer.wait()
        stdout.close()
    return KillReport(kills=runs, mid_write=mid_write)


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "256k") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (created), unmounted afterwards: a disk that
    can be filled in milliseconds (``fill_disk``). Needs root (CI runs as root); skips the
    test saying why where it cannot mount."""
    import pytest  # noqa: PLC0415

    if os.geteuid() != 0:
        pytest.skip("a tiny tmpfs needs root (mount -t tmpfs); CI runs as root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill_disk(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte with one file (returned:
    remove it to free the space again)."""
    filler = directory / "filler"
    block = b"\0" * 65536
    with filler.open("wb", buffering=0) as file:
        for size in (65536, 4096, 1):
            try:
                while True:
                    file.write(block[:size])
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC: this size no longer fits; try a smaller one
                    raise
    return filler


async def job_of(client: Any, job_id: str) -> dict[str, Any]:
    """GET /api/v1/job/{id} through ``client`` (a test client or a session with a base
    URL), asserting 200."""
    response = await client.get(f"/api/v1/job/{job_id}")
    assert response.status == 200, await response.text()
    job: dict[str, Any] = await response.json()
    return job


async def job_finished(client: Any, job_id: str, seconds: float = 60.0) -> dict[str, Any]:
    """The job once it is done or failed, polled through ``client``; fails after
    ``seconds``."""
    job: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal job
        job = await job_of(client, job_id)
        return job["status"] in ("done", "failed")

    await until(finished, seconds, interval=0.05, what=f"job {job_id} finished")
    return job
