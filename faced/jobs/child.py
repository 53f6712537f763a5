"""The job process: jobs run in a child Python process, the daemon holds its handle.

Owns: both ends of the pipe between the daemon and the child — ``JobProcess`` (the daemon's
side: start the child for a run of jobs, send it one job at a time, relay its progress, kill
it, let it end when the queue is empty) and ``main`` (the child's side, ``python -m
faced.jobs.child``: its lower CPU priority, its own pipeline, faced.jobs.worker for each
job) — and the messages between them, one JSON object a line. Does not own: which job runs
when, the database or the files (faced.jobs.service), one job's work (faced.jobs.worker).

Why a process: a job's Python work (decode, pre/post-processing, the files) in a thread of
the daemon competes for the interpreter lock with live tracking and the event loop, and a
nice value cannot lower a lock's share. Why ``asyncio.create_subprocess_exec`` over
``multiprocessing``: the child is a plain ``python -m`` (no re-import of the daemon's
``__main__``, no resource tracker, no pickling), its exit status says how it ended, and
killing it is one call. The child's replies use a copy of its stdout taken at start, and
its fd 1 then points at stderr, so a native library printing to stdout cannot corrupt them.
The child ends on its stdin's end — the daemon's word when the queue is empty, or the
daemon's death (kill -9 included): a take is never processed by an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from faced.jobs.store import Settings
from faced.jobs.worker import JobFailed, Outcome

if TYPE_CHECKING:
    from faced.config.sections import VisionConfig
    from faced.vision.pipeline import FacePipeline

log = logging.getLogger(__name__)

CLOSE_WAIT_S: Final = 5.0
"""How long an idle child may take to exit after its stdin closed before it is killed."""
ERROR_CHARS: Final = 500
_ROOT: Final = str(Path(__file__).resolve().parents[2])
"""Where faced is imported from: the child imports the same code as the daemon."""


class Request(msgspec.Struct, frozen=True):
    """One job, daemon → child."""

    video: str
    out_dir: str
    settings: Settings
    take: int
    subject: str


class Progress(msgspec.Struct, frozen=True, tag="progress"):
    share: float


class Done(msgspec.Struct, frozen=True, tag="done"):
    outcome: Outcome


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    error: str
    """The job's ``error`` as the client sees it."""


Reply = Progress | Done | Failed


class Ended(Exception):
    """The child ended (or broke the protocol) while it had a job; the message says how."""


class JobProcess:
    """The daemon's handle on the child: started by the first ``run`` of a run of jobs."""

    def __init__(self, vision: VisionConfig, nice: int) -> None:
        self._vision = msgspec.json.encode(vision).decode()
        self._nice = nice
        self._process: asyncio.subprocess.Process | None = None
        self._decoder = msgspec.json.Decoder(Reply)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def run(self, request: Request, progress: Callable[[float], None]) -> Outcome:
        """Run one job in the child (started if none is); ``JobFailed`` with the job's
        error, ``Ended`` when the child ended before answering."""
        process = self._process
        if process is not None and process.returncode is not None:
            await self.stop()  # it died while idle: reaped before the next one starts
            process = None
        if process is None:
            process = self._process = await self._start()
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(msgspec.json.encode(request) + b"\n")
            await process.stdin.drain()
        except (ConnectionError, BrokenPipeError):
            pass  # it died: the read below finds the end and says how
        while True:
            line = await process.stdout.readline()
            if not line:
                raise Ended(await self._ended(process))
            try:
                reply = self._decoder.decode(line)
            except msgspec.DecodeError:
                self.kill()
                await self._ended(process)
                raise Ended("the job process sent an unreadable reply") from None
            if isinstance(reply, Progress):
                progress(reply.share)
            elif isinstance(reply, Done):
                return reply.outcome
            else:
                raise JobFailed(reply.error)

    def kill(self) -> None:
        """Kill the child now (a job cancelled, the daemon stopping); no wait."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def close(self) -> None:
        """The queue is empty: the child ends (its models' memory goes with it)."""
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await _reap(process)
        except TimeoutError:
            log.warning("the job process did not exit when idle: killed")
            self.kill()
            await _reap(process)
        self._forget(process)

    async def stop(self) -> None:
        """The daemon is stopping: kill the child and reap it."""
        process = self._process
        if process is None:
            return
        self.kill()
        await _reap(process)
        self._forget(process)

    def _forget(self, process: asyncio.subprocess.Process) -> None:
        # Only once reaped: a close cut short (the daemon stopping) leaves it to stop().
        if self._process is process:
            self._process = None

    async def _start(self) -> asyncio.subprocess.Process:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_ROOT, env.get("PYTHONPATH"))))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "faced.jobs.child", str(self._nice), self._vision,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )  # fmt: skip
        log.info("job process %d started", process.pid)
        return process

    async def _ended(self, process: asyncio.subprocess.Process) -> str:
        code = await _reap(process)
        self._forget(process)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the job's process ended unexpectedly (killed by {name})"
        return f"the job's process ended unexpectedly (exit status {code})"


async def _reap(process: asyncio.subprocess.Process) -> int:
    """Its exit status, once its stdout reached its end too: only then is the transport
    closed (asyncio closes it when both the process and its pipes are gone)."""
    assert process.stdout is not None
    await process.stdout.read()
    return await process.wait()


# --- the child -------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``python -m faced.jobs.child NICE VISION_JSON``: jobs from stdin, replies on stdout."""
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _lower_priority(int(argv[0]))  # first: every thread started later inherits it
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="faced job process: %(message)s"
    )
    from faced.config.sections import VisionConfig  # noqa: PLC0415

    vision = msgspec.json.decode(argv[1], type=VisionConfig)
    requests = msgspec.json.Decoder(Request)
    encoder = msgspec.json.Encoder()
    lines: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def read() -> None:
        # The end of stdin: the daemon closed it (idle) or died; either way stop now,
        # even mid-job (a new daemon runs that job again).
        for line in sys.stdin.buffer:
            lines.put(line)
        os._exit(0)

    threading.Thread(target=read, name="stdin", daemon=True).start()

    def send(reply: Reply) -> None:
        replies.write(encoder.encode(reply) + b"\n")

    pipeline: FacePipeline | None = None
    never = threading.Event()
    while True:
        request = requests.decode(lines.get())
        try:
            if pipeline is None:
                pipeline = _load(vision)
            outcome = _process(pipeline, request, lambda share: send(Progress(share)), never)
        except JobFailed as exc:
            send(Failed(str(exc)[:ERROR_CHARS]))
        except Exception as exc:
            logging.getLogger(__name__).exception("job failed")
            send(Failed(f"processing failed: {exc}"[:ERROR_CHARS]))
        else:
            send(Done(outcome))


def _lower_priority(nice: int) -> None:
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))
    except OSError as exc:
        print(f"faced job process: cannot lower its CPU priority: {exc}", file=sys.stderr)


def _load(vision: VisionConfig) -> FacePipeline:
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415  (the runtime)
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    return FacePipeline.load(
        vision.model_dir or None,
        threads=1,
        num_faces=vision.num_faces,
        runtime=Runtime.from_config(vision, threads=1),
        detector=vision.detector,
    )


def _process(
    pipeline: FacePipeline,
    request: Request,
    progress: Callable[[float], None],
    never: threading.Event,
) -> Outcome:
    from faced.jobs import worker  # noqa: PLC0415

    return worker.process(
        pipeline,
        Path(request.video),
        Path(request.out_dir),
        request.settings,
        take=request.take,
        subject=request.subject,
        progress=progress,
        cancelled=never,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


__all__ = ["Done", "Ended", "Failed", "JobProcess", "Progress", "Reply", "Request", "main"]
