"""The jobs component: takes accepted, queued, run one at a time, kept and removed.

Owns: the jobs' lifecycle — an upload streamed to its file and accepted (``Upload``), a
take recorded from the camera (faced.jobs.recorder), the queue (``max_queued``), one job at
a time in the job process (faced.jobs.child: its own pipeline, started for a run of jobs and
ended when the queue empties, at a lower CPU priority than live tracking; a job whose
process dies is run once more, then fails), progress (to the database at most once a
second, to event-stream readers as it comes), cancelling and deleting, retention
(``keep_days``, ``max_bytes``: oldest finished first) and what a restart finds (processing
jobs run again, queued ones go on, files no job owns are removed). Does not own: the
database (faced.jobs.store), the job process (faced.jobs.child), the work of one job
(faced.jobs.worker), or the routes (faced.api.jobs).

Files: ``<state dir>/jobs.sqlite3`` and ``<state dir>/jobs/<job id>/`` (the video, the curves
JSON, the CSV). A job is accepted (202) only once its video is whole on disk and its row
committed, so a kill at any moment loses no accepted job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec
from aiohttp import web

from faced.api.errors import ApiError
from faced.jobs import child, recorder, worker
from faced.jobs.store import QueueFull, Record, Settings, Store, now_ms
from faced.schemas.jobs import FINISHED, Job, JobOptions, JobResult
from faced.state import save_refused, state_dir

if TYPE_CHECKING:
    from faced.config import Config
    from faced.live import LiveService

log = logging.getLogger(__name__)

DATABASE: Final = "jobs.sqlite3"
FILES: Final = "jobs"
VIDEO: Final = "video"
_VIDEO_NAME: Final = re.compile(rf"{VIDEO}(\.[A-Za-z0-9]{{1,8}})?")
"""A job's video file: VIDEO, with the upload's suffix or ".avi" for a recording."""
PROGRESS_WRITE_S: Final = 1.0
SWEEP_EVERY_S: Final = 3600.0
WRITE_BATCH: Final = 1024 * 1024
"""Upload bytes gathered before one write to disk (off the loop)."""
NO_CAMERA: Final = "no camera: camera.source is none"
ATTEMPTS: Final = 2
"""A job whose process ends under it (a crash, the OOM killer, kill -9) runs once more: a
passing cause loses nothing, a video that kills its decoder fails instead of looping."""


class Jobs:
    """The daemon's jobs; the routes find it under ``JOBS_KEY``."""

    def __init__(self, config: Config, live: LiveService) -> None:
        self.config = config.jobs
        self._camera_fps = config.camera.fps
        self._live = live
        self._state = state_dir(config)
        self.files = self._state / FILES
        self.store = Store(self._state / DATABASE)
        self.subject = socket.gethostname() or "faced"
        self.ready = False
        self.streams = 0
        """Open event streams (the routes bound them)."""
        self.closing = False
        """Set on shutdown: event streams end."""
        self._wake = asyncio.Event()
        self._changed: asyncio.Future[None] | None = None
        self._running: tuple[str, threading.Event] | None = None
        self._progress: dict[str, float] = {}
        self._recordings: dict[str, threading.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._process = child.JobProcess(config.vision, self.config.nice)
        self.done = 0
        self.failed = 0

    # --- lifecycle -----------------------------------------------------------------------

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: the database opened and tidied, the runner and the sweeper
        started; at cleanup the job process is killed and its job stays queued."""
        del app
        if not self.config.enabled:
            yield
            return
        requeued, cut_off = await self.store.open()
        if requeued or cut_off:
            log.info("jobs resumed", extra={"requeued": requeued, "recordings_cut_off": cut_off})
        await self._remove_orphans()
        await self._remove_dropped_videos()
        self.ready = True
        runner = asyncio.create_task(self._run_jobs(), name="jobs-runner")
        sweeper = asyncio.create_task(self._sweep_regularly(), name="jobs-sweeper")
        try:
            yield
        finally:
            self.ready = False
            for stop in self._recordings.values():
                stop.set()
            if self._running is not None:
                self._running[1].set()
            self._process.kill()
            for task in (runner, sweeper, *self._tasks):
                task.cancel()
            await asyncio.gather(runner, sweeper, *self._tasks, return_exceptions=True)
            await self._process.stop()
            await self.store.close()

    async def shutdown(self, app: web.Application) -> None:
        """On shutdown: event streams end (before in-flight requests are waited for)."""
        del app
        self.closing = True
        self._notify()

    def report(self) -> dict[str, object]:
        """The /health entry: no job's content, only counts."""
        if not self.config.enabled:
            return {"status": "off", "reason": "jobs.enabled is false"}
        return {
            "status": "ok" if self.ready else "off",
            "running": self._running is not None,
            "process": self._process.pid is not None,
            "recording": len(self._recordings),
            "done": self.done,
            "failed": self.failed,
        }

    def available(self) -> None:
        """Refuse every route while jobs are off or not started (503)."""
        if not self.config.enabled:
            raise ApiError(503, "jobs are off: jobs.enabled is false")
        if not self.ready:
            raise ApiError(503, "jobs are not ready yet", headers={"Retry-After": "1"})

    # --- reading -------------------------------------------------------------------------

    async def get(self, job_id: str) -> Record | None:
        record = await self.store.get(job_id)
        if record is None or record.job.status != "processing":
            return record
        live = self._progress.get(job_id)
        if live is None:
            return record
        job = msgspec.structs.replace(record.job, progress=round(live, 3))
        return Record(job, record.take, record.settings, record.video, record.bytes)

    async def wait_change(self) -> None:
        """Until any job changes (wrap it in ``asyncio.timeout``)."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._changed)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None and not changed.done():
            changed.set_result(None)

    def job_dir(self, job_id: str) -> Path:
        return self.files / job_id

    # --- accepting -----------------------------------------------------------------------

    async def check_room(self) -> None:
        """429 before reading an upload when the queue is full already."""
        if await self.store.active() >= self.config.max_queued:
            raise _queue_full(self.config.max_queued)

    def settings_of(self, options: JobOptions) -> Settings:
        """What the job will run with; 409 for ``calibrated`` without a calibration."""
        neutral = None
        if options.calibrated:
            current = self._live.calibration.neutral
            if current is None:
                raise ApiError(409, "no calibration to apply: POST /api/tracking/calibrate first")
            neutral = dict(current.blendshapes)
        return Settings(
            label=options.label,
            keep_video=options.keep_video,
            calibrated=options.calibrated,
            fps=options.fps,
            neutral=neutral,
            # The live results' setting (vision.lid_drift_correction, changeable at run time).
            lid_drift_correction=self._live.calibration.lid_drift_correction,
        )

    def upload(self, suffix: str = "") -> Upload:
        """A new upload; ``suffix`` (".mp4", from the client's file name) helps nobody but
        a person looking at the files: the decoder reads the container from the bytes."""
        return Upload(self, suffix)

    async def accept(self, job_id: str, settings: Settings, video: str, size: int) -> None:
        """Commit an uploaded job (its video whole on disk) and wake the runner."""
        record = Record(
            job=_new_job(job_id, settings.label, "upload"),
            take=0,
            settings=settings,
            video=video,
            bytes=size,
        )
        try:
            await self.store.add(record, self.config.max_queued)
        except QueueFull:
            raise _queue_full(self.config.max_queued) from None
        except sqlite3.OperationalError as exc:
            raise _not_stored(exc) from None
        log.info("job %s accepted", job_id, extra={"bytes": size})
        self._wake.set()
        self._notify()

    async def record(self, settings: Settings, seconds: float) -> str:
        """Start recording a take from the camera as a new job; its id."""
        camera = self._live.camera
        if camera is None:
            raise ApiError(503, NO_CAMERA)
        job_id = uuid.uuid4().hex
        directory = self.job_dir(job_id)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        video = f"{VIDEO}.avi"
        record = Record(
            job=_new_job(job_id, settings.label, "camera", recording=True),
            take=0,
            settings=settings,
            video=video,
            bytes=0,
        )
        try:
            await self.store.add(record, self.config.max_queued)
        except QueueFull:
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
            raise _queue_full(self.config.max_queued) from None
        stop = self._recordings[job_id] = threading.Event()
        path = directory / video
        task = asyncio.create_task(
            self._record(job_id, camera, path, seconds, stop), name=f"jobs-record-{job_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("job %s recording %.0f s from the camera", job_id, seconds)
        self._notify()
        return job_id

    async def _record(
        self, job_id: str, camera: object, path: Path, seconds: float, stop: threading.Event
    ) -> None:
        try:
            take = await asyncio.to_thread(
                recorder.record,
                camera,  # type: ignore[arg-type]
                path,
                seconds,
                self._camera_fps,
                stop,
            )
        except Exception as exc:
            log.exception("job %s: recording failed", job_id)
            await self.store.fail(job_id, f"recording failed: {exc}", 0, None)
            return
        finally:
            self._recordings.pop(job_id, None)
        if take.frames == 0:
            await self.store.fail(job_id, "the camera gave no frames to record", 0, None)
        else:
            local = time.localtime(take.started_wall_ms / 1000)
            of_day = (local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec) * 1000
            await self.store.recorded(job_id, take.bytes, of_day + take.started_wall_ms % 1000)
        self._wake.set()
        self._notify()

    # --- removing ------------------------------------------------------------------------

    async def delete(self, job_id: str) -> bool:
        """Cancel the job (recording or running) and remove it and its files."""
        stop = self._recordings.get(job_id)
        if stop is not None:
            stop.set()
        running = self._running
        if running is not None and running[0] == job_id:
            running[1].set()  # the runner removes its files once the process is gone
            self._process.kill()
        removed = await self.store.delete(job_id)
        await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), ignore_errors=True)
        if removed:
            log.info("job %s deleted", job_id)
            self._notify()
        return removed

    async def _remove_dropped_videos(self) -> None:
        """Videos of finished jobs that keep none: a kill between a job's end being
        committed and its video's removal (_kept_and_size) leaves one."""
        finished = await self.store.finished_without_video()

        def remove() -> int:
            removed = 0
            for job_id in finished:
                with contextlib.suppress(OSError):
                    for path in self.job_dir(job_id).iterdir():
                        if _VIDEO_NAME.fullmatch(path.name):
                            path.unlink(missing_ok=True)
                            removed += 1
            return removed

        removed = await asyncio.to_thread(remove)
        if removed:
            log.info("removed %d videos of finished jobs", removed)

    async def _remove_orphans(self) -> None:
        """Directories no job owns: uploads cut off before they were accepted."""
        known = await self.store.ids()

        def remove() -> int:
            if not self.files.is_dir():
                return 0
            orphans = [p for p in self.files.iterdir() if p.name not in known]
            for path in orphans:
                shutil.rmtree(path, ignore_errors=True)
            return len(orphans)

        removed = await asyncio.to_thread(remove)
        if removed:
            log.info("removed %d unfinished uploads", removed)

    async def sweep(self) -> None:
        """Retention: finished jobs older than keep_days, then the oldest finished ones
        until the files fit in max_bytes."""
        doomed: list[str] = []
        if self.config.keep_days > 0:
            cutoff = now_ms() - int(self.config.keep_days * 86400 * 1000)
            doomed += await self.store.finished_before(cutoff)
        total, finished = await self.store.usage()
        # The expired jobs' bytes are freed too: only what remains counts against max_bytes.
        total -= sum(size for job_id, size in finished if job_id in doomed)
        for job_id, size in finished:
            if total <= self.config.max_bytes:
                break
            if job_id not in doomed:
                doomed.append(job_id)
                total -= size
        for job_id in doomed:
            await self.delete(job_id)
        if doomed:
            log.info("retention removed %d jobs", len(doomed))

    async def _sweep_regularly(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("jobs retention sweep failed")
            await asyncio.sleep(SWEEP_EVERY_S)

    # --- running -------------------------------------------------------------------------

    async def _run_jobs(self) -> None:
        try:
            while True:
                self._wake.clear()
                record = await self.store.claim_next()
                if record is None:
                    await self._process.close()  # the models' memory back while idle
                    await self._wake.wait()
                    continue
                self._notify()
                await self._run(record)
        finally:
            self._process.kill()  # stopping: the job stays queued for the next start

    async def _run(self, record: Record) -> None:
        job_id = record.job.id
        cancel = threading.Event()
        self._running = (job_id, cancel)
        self._progress[job_id] = 0.0
        last_write = [time.monotonic()]

        def progress(share: float) -> None:
            self._on_progress(job_id, share, last_write)

        directory = self.job_dir(job_id)
        video = directory / record.video if record.video else None
        started = time.monotonic()
        try:
            if video is None or not await asyncio.to_thread(video.exists):
                await self._finish_failed(record, "the job's video is missing")
                return
            request = child.Request(
                video=str(video),
                out_dir=str(directory),
                settings=record.settings,
                take=record.take,
                subject=self.subject,
            )
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    outcome = await self._process.run(request, progress)
                    break
                except child.Ended as exc:
                    if cancel.is_set():
                        raise
                    if attempt == ATTEMPTS:
                        raise worker.JobFailed(f"{exc}, twice") from None
                    log.warning("job %s: %s; running it again", job_id, exc)
                    self._progress[job_id] = 0.0
            if cancel.is_set():  # it finished as it was deleted
                raise child.Ended("deleted")
        except Exception as exc:
            if cancel.is_set():  # deleted (its row is gone), or the daemon is stopping
                await self._stopped(job_id)
            elif isinstance(exc, worker.JobFailed):
                await self._finish_failed(record, str(exc))
            else:
                log.exception("job %s failed", job_id)
                await self._finish_failed(record, f"processing failed: {exc}")
            return
        finally:
            self._running = None
            self._progress.pop(job_id, None)
        kept, size = await asyncio.to_thread(_kept_and_size, record, directory, video)
        result = JobResult(
            frames=outcome.frames,
            fps=outcome.fps,
            duration_s=outcome.duration_s,
            faces_found=outcome.faces_found,
            curves_url=f"/api/v1/job/{job_id}/curves",
            csv_url=f"/api/v1/job/{job_id}/csv",
            csv_name=outcome.csv_name,
            video_url=f"/api/v1/job/{job_id}/video" if kept else None,
        )
        await self.store.finish(job_id, result, size, record.video if kept else None)
        if not kept:  # only now: see _kept_and_size
            await _drop(video)
        self.done += 1
        log.info(
            "job %s done",
            job_id,
            extra={"frames": outcome.frames, "s": round(time.monotonic() - started, 2)},
        )
        self._notify()
        await self.sweep()

    async def _stopped(self, job_id: str) -> None:
        """A job's process was killed: if the job was deleted, what the process wrote after
        the delete goes too; else (shutdown) it stays queued for the next start."""
        log.info("job %s stopped", job_id)
        if await self.store.get(job_id) is None:
            await asyncio.to_thread(shutil.rmtree, self.job_dir(job_id), ignore_errors=True)

    def _on_progress(self, job_id: str, share: float, last_write: list[float]) -> None:
        if job_id not in self._progress:
            return
        self._progress[job_id] = share
        self._notify()
        now = time.monotonic()
        if now - last_write[0] >= PROGRESS_WRITE_S:
            last_write[0] = now
            task = asyncio.create_task(self.store.progress(job_id, share), name="jobs-progress")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _finish_failed(self, record: Record, error: str) -> None:
        job_id = record.job.id
        directory = self.job_dir(job_id)
        video = directory / record.video if record.video else None
        kept, size = await asyncio.to_thread(_kept_and_size, record, directory, video)
        await self.store.fail(job_id, error, size, record.video if kept else None)
        if not kept:
            await _drop(video)
        self.failed += 1
        log.info("job %s failed: %s", job_id, error)
        self._notify()


class Upload:
    """One upload streamed to its job's directory: ``write`` chunks, then ``accept``;
    anything else (a client gone, 413) removes the directory."""

    def __init__(self, jobs: Jobs, suffix: str = "") -> None:
        self._jobs = jobs
        self.job_id = uuid.uuid4().hex
        self.directory = jobs.job_dir(self.job_id)
        self.name = VIDEO + suffix
        self.size = 0
        self._buffer = bytearray()
        self._handle: object = None

    async def __aenter__(self) -> Upload:
        def open_file() -> object:
            self.directory.mkdir(parents=True, exist_ok=True)
            return (self.directory / self.name).open("wb")

        try:
            self._handle = await asyncio.to_thread(open_file)
        except OSError as exc:
            raise save_refused(exc, "the video") from None
        return self

    async def __aexit__(self, kind: object, value: object, traceback: object) -> None:
        await self._close()
        if kind is not None:
            await asyncio.to_thread(shutil.rmtree, self.directory, ignore_errors=True)

    async def write(self, chunk: bytes) -> None:
        """Add ``chunk``; 413 beyond jobs.max_upload_bytes."""
        limit = self._jobs.config.max_upload_bytes
        self.size += len(chunk)
        if self.size > limit:
            raise ApiError(413, f"video too large: limit {limit} bytes (jobs.max_upload_bytes)")
        self._buffer += chunk
        if len(self._buffer) >= WRITE_BATCH:
            await self._flush()

    async def _flush(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        try:
            await asyncio.to_thread(self._handle.write, data)  # type: ignore[attr-defined]
        except OSError as exc:  # a full disk: 507, the upload's directory removed
            raise save_refused(exc, "the video") from None

    async def _close(self) -> None:
        handle = self._handle
        if handle is None:
            return
        self._handle = None

        def close() -> None:
            import os  # noqa: PLC0415

            try:
                handle.flush()  # type: ignore[attr-defined]
                os.fsync(handle.fileno())  # type: ignore[attr-defined]
            finally:
                handle.close()  # type: ignore[attr-defined]

        try:
            await asyncio.to_thread(close)
        except OSError as exc:
            raise save_refused(exc, "the video") from None

    async def accept(self, settings: Settings) -> str:
        """The video is whole: commit the job (202 follows); its id."""
        if self.size == 0:
            raise ApiError(400, "the video is empty")
        if self._buffer:
            await self._flush()
        await self._close()
        await self._jobs.accept(self.job_id, settings, self.name, self.size)
        return self.job_id


def _new_job(job_id: str, label: str | None, source: str, *, recording: bool = False) -> Job:
    return Job(
        id=job_id,
        label=label,
        status="pending",
        progress=0.0,
        error=None,
        source=source,  # type: ignore[arg-type]
        recording=recording,
        created=now_ms(),
        started=None,
        finished=None,
        result=None,
    )


def _queue_full(limit: int) -> ApiError:
    return ApiError(
        429,
        f"too many jobs waiting: {limit} queued or running (jobs.max_queued)",
        headers={"Retry-After": "10"},
    )


def _not_stored(exc: sqlite3.OperationalError) -> ApiError:
    """A job the database refused: 507 when the disk is full (SQLITE_FULL), else 500."""
    full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)
    return ApiError(507 if full else 500, f"cannot save the job: {exc}")


def _kept_and_size(record: Record, directory: Path, video: Path | None) -> tuple[bool, int]:
    """Whether a finished job keeps its video, and its directory's bytes once it has its
    way. The caller commits the job's end first and removes the video after: a kill in
    between leaves a finished job's video, which the next start removes, never a job to run
    again without its video."""
    kept = video is not None and record.settings.keep_video and video.exists()
    size = _size_of(directory)
    if video is not None and not kept:
        with contextlib.suppress(OSError):
            size -= video.stat().st_size
    return kept, size


async def _drop(video: Path | None) -> None:
    if video is not None:
        await asyncio.to_thread(video.unlink, missing_ok=True)


def _size_of(directory: Path) -> int:
    with contextlib.suppress(OSError):
        return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    return 0


def is_finished(job: Job) -> bool:
    return job.status in FINISHED


__all__ = ["DATABASE", "FILES", "Jobs", "Upload", "is_finished"]
