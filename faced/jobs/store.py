"""The jobs' database: one SQLite file in the state directory, one connection, one thread.

Owns: the ``jobs`` table (each job's state, options, result and the bytes its files take),
every state change as one explicit transaction, and what a restart finds (jobs that were
processing are pending again; a take whose recording was cut off goes on with what was
recorded). Does not own: the files (faced.jobs.service keeps them beside the database) or
running jobs (faced.jobs.service, faced.jobs.worker).

Why stdlib ``sqlite3`` on a thread of its own rather than aiosqlite: aiosqlite does exactly
this (a thread per connection fed from a queue) as a dependency; a one-thread executor is
the same design in a few lines, and the connection never leaves its thread. ``sqlite3``
calls never run on the event loop (they block). WAL with ``synchronous=FULL``: every
committed change — a job accepted, a job finished — survives a kill or a power cut;
progress is written at most once a second, so the fsyncs stay cheap even on an SD card.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from faced.schemas.jobs import Job, JobOptions, JobResult

T = TypeVar("T")

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    label TEXT,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    error TEXT,
    source TEXT NOT NULL,
    recording INTEGER NOT NULL DEFAULT 0,
    options BLOB NOT NULL,
    video TEXT,
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    result BLOB,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
"""
_COLUMNS: Final = (
    "seq, id, label, status, progress, error, source, recording, options, video, "
    "created, started, finished, result, bytes"
)
ACTIVE: Final = ("pending", "processing")


class Settings(JobOptions, kw_only=True, forbid_unknown_fields=True):
    """What a job runs with, as stored: the client's options and what was fixed when it
    was accepted (so a job run again after a restart gives the same curves)."""

    neutral: dict[str, float] | None = None
    """The calibration's neutral at submission (``calibrated``)."""
    start_ms_of_day: int = 0
    """Where the CSV's timecode starts: a camera take's local time of day, else 0."""
    lid_drift_correction: bool = False
    """``vision.lid_drift_correction`` at submission (faced.vision.lid_drift)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One row: the job as the API shows it, and what only the daemon needs."""

    job: Job
    take: int
    """The row's sequence number: the take number of the CSV's name."""
    settings: Settings
    video: str | None
    """The video's file name in the job's directory (None once deleted)."""
    bytes: int


class QueueFull(Exception):
    """``max_queued`` jobs are already waiting or running."""


def now_ms() -> int:
    return int(time.time() * 1000)


_settings_decoder = msgspec.json.Decoder(Settings)
_result_decoder = msgspec.json.Decoder(JobResult)
_encode = msgspec.json.encode


def _record(row: tuple[object, ...]) -> Record:
    (seq, id_, label, status, progress, error, source, recording, options, video,
     created, started, finished, result, size) = row  # fmt: skip
    assert isinstance(options, bytes)
    job = Job(
        id=str(id_),
        label=label if isinstance(label, str) else None,
        status=status,  # type: ignore[arg-type]  # the table only holds JobStatus values
        progress=float(progress),  # type: ignore[arg-type]
        error=error if isinstance(error, str) else None,
        source=source,  # type: ignore[arg-type]
        recording=bool(recording),
        created=int(created),  # type: ignore[call-overload]
        started=started if isinstance(started, int) else None,
        finished=finished if isinstance(finished, int) else None,
        result=_result_decoder.decode(result) if isinstance(result, bytes) else None,
    )
    return Record(
        job=job,
        take=int(seq),  # type: ignore[call-overload]
        settings=_settings_decoder.decode(options),
        video=video if isinstance(video, str) else None,
        bytes=int(size),  # type: ignore[call-overload]
    )


class Store:
    """The jobs table; every method runs on the store's own thread (awaitable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._empty: sqlite3.Connection | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def open(self) -> tuple[int, int]:
        """Open (or create) the database; returns (jobs requeued because they were
        processing, takes whose recording was cut off) by the previous run's end."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobs-db")
        return await self._call(self._open)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._call(self._close)
        executor, self._executor = self._executor, None
        await asyncio.to_thread(executor.shutdown, wait=True)

    async def _call(self, func: Callable[[], T]) -> T:
        assert self._executor is not None, "the store is not open"
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    def _open(self) -> tuple[int, int]:
        # The database is created by the first job, not at start: a box nobody sends a take
        # writes nothing. Until then reads see an empty table in memory.
        self._empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._empty.executescript(SCHEMA)
        if not self.path.exists():
            return 0, 0
        db = self._connect()
        with self._transaction():
            requeued = db.execute(
                "UPDATE jobs SET status='pending', started=NULL, progress=0 "
                "WHERE status='processing'"
            ).rowcount
            cut_off = db.execute("UPDATE jobs SET recording=0 WHERE recording=1").rowcount
        return requeued, cut_off

    def _connect(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(SCHEMA)
        return db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._empty is not None:
            self._empty.close()
            self._empty = None

    def _transaction(self) -> _Transaction:
        assert self._db is not None
        return _Transaction(self._db)

    def _query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        db = self._db or self._empty
        assert db is not None
        return db.execute(sql, args).fetchall()

    # --- reads ----------------------------------------------------------------------------

    async def get(self, job_id: str) -> Record | None:
        rows = await self._call(
            lambda: self._query(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", job_id)
        )
        return _record(rows[0]) if rows else None

    async def page(self, limit: int, offset: int) -> tuple[list[Record], int]:
        """Jobs newest first, and how many there are."""

        def read() -> tuple[list[Record], int]:
            rows = self._query(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ? OFFSET ?", limit, offset
            )
            (total,) = self._query("SELECT COUNT(*) FROM jobs")[0]
            return [_record(row) for row in rows], int(total)  # type: ignore[call-overload]

        return await self._call(read)

    async def finished_before(self, ms: int) -> list[str]:
        rows = await self._call(
            lambda: self._query(
                "SELECT id FROM jobs WHERE status IN ('done','failed') AND finished < ? "
                "ORDER BY seq",
                ms,
            )
        )
        return [str(row[0]) for row in rows]

    async def usage(self) -> tuple[int, list[tuple[str, int]]]:
        """All jobs' bytes together, and the finished jobs (id, bytes), oldest first."""

        def read() -> tuple[int, list[tuple[str, int]]]:
            (total,) = self._query("SELECT COALESCE(SUM(bytes), 0) FROM jobs")[0]
            rows = self._query(
                "SELECT id, bytes FROM jobs WHERE status IN ('done','failed') "
                "ORDER BY finished, seq"
            )
            return int(total), [(str(i), int(b)) for i, b in rows]  # type: ignore[call-overload]

        return await self._call(read)

    async def finished_without_video(self) -> list[str]:
        """Finished jobs that keep no video (a leftover one is to be removed)."""
        rows = await self._call(
            lambda: self._query(
                "SELECT id FROM jobs WHERE status IN ('done','failed') AND video IS NULL "
                "ORDER BY seq"
            )
        )
        return [str(row[0]) for row in rows]

    async def ids(self) -> set[str]:
        rows = await self._call(lambda: self._query("SELECT id FROM jobs"))
        return {str(row[0]) for row in rows}

    # --- state changes: one transaction each -----------------------------------------------

    async def add(self, record: Record, max_active: int) -> None:
        """Insert a new job; QueueFull when ``max_active`` jobs already wait or run."""
        job = record.job

        def insert() -> None:
            self._connect()
            assert self._db is not None
            with self._transaction():
                (active,) = self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", ACTIVE
                ).fetchone()
                if active >= max_active:
                    raise QueueFull
                self._db.execute(
                    "INSERT INTO jobs (id, label, status, source, recording, options, video, "
                    "created, bytes) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                    (
                        job.id,
                        job.label,
                        job.source,
                        int(job.recording),
                        _encode(record.settings),
                        record.video,
                        job.created,
                        record.bytes,
                    ),
                )

        await self._call(insert)

    async def active(self) -> int:
        rows = await self._call(
            lambda: self._query("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", *ACTIVE)
        )
        return int(rows[0][0])  # type: ignore[call-overload]

    async def claim_next(self) -> Record | None:
        """The oldest pending job whose video is complete, now marked processing."""

        def claim() -> Record | None:
            if self._db is None:
                return None  # no database yet: no job
            with self._transaction():
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE status='pending' AND recording=0 "
                    "ORDER BY seq LIMIT 1"
                ).fetchall()
                if not rows:
                    return None
                started = now_ms()
                self._db.execute(
                    "UPDATE jobs SET status='processing', started=?, progress=0 WHERE seq=?",
                    (started, rows[0][0]),
                )
            record = _record(rows[0])
            job = msgspec.structs.replace(record.job, status="processing", started=started)
            return Record(job, record.take, record.settings, record.video, record.bytes)

        return await self._call(claim)

    async def recorded(self, job_id: str, video_bytes: int, start_ms_of_day: int) -> None:
        """The take's recording ended: it may run (with the timecode it started at)."""

        def update() -> None:
            assert self._db is not None
            with self._transaction():
                row = self._db.execute("SELECT options FROM jobs WHERE id=?", (job_id,))
                found = row.fetchone()
                if found is None:
                    return
                settings = _settings_decoder.decode(found[0])
                settings.start_ms_of_day = start_ms_of_day
                self._db.execute(
                    "UPDATE jobs SET recording=0, bytes=?, options=? WHERE id=?",
                    (video_bytes, _encode(settings), job_id),
                )

        await self._call(update)

    async def progress(self, job_id: str, progress: float) -> None:
        await self._call(
            lambda: self._write(
                "UPDATE jobs SET progress=? WHERE id=? AND status='processing'", progress, job_id
            )
        )

    async def finish(self, job_id: str, result: JobResult, size: int, video: str | None) -> None:
        await self._call(
            lambda: self._write(
                "UPDATE jobs SET status='done', progress=1, finished=?, result=?, bytes=?, "
                "video=? WHERE id=?",
                now_ms(),
                _encode(result),
                size,
                video,
                job_id,
            )
        )

    async def fail(self, job_id: str, error: str, size: int, video: str | None) -> None:
        await self._call(
            lambda: self._write(
                "UPDATE jobs SET status='failed', error=?, finished=?, bytes=?, video=? WHERE id=?",
                error,
                now_ms(),
                size,
                video,
                job_id,
            )
        )

    async def delete(self, job_id: str) -> bool:
        return await self._call(lambda: self._write("DELETE FROM jobs WHERE id=?", job_id) > 0)

    def _write(self, sql: str, *args: object) -> int:
        if self._db is None:
            return 0  # no database yet: no job to change
        with self._transaction():
            return self._db.execute(sql, args).rowcount


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` when the block raises."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


__all__ = ["QueueFull", "Record", "Settings", "Store", "now_ms"]
