"""The analyze worker pool: N face pipelines, each on its own thread, bounded admission.

Owns the pipelines that serve /v1/analyze and /v1/stream, their threads and admission.
Does not own HTTP (faced.api.analyze, faced.api.analyze_stream) or the live camera's
pipeline (faced.live).
Why: inference must never run on the event loop, and a burst must be refused, not queued.

``AnalyzePool`` owns ``vision.analyze_workers`` pipelines; each lives on one dedicated
thread (a single-thread executor) with its own interpreters (a single worker may share
the live tracker's, see below), and N workers use N cores. Jobs (decode + inference, never
on the event loop) go to the least-loaded worker. Admission is bounded: at most ``backlog`` jobs
wait per worker; beyond that ``PoolBusy`` (the API answers 503 with Retry-After) — there is
no unbounded queue anywhere. A stream (/v1/stream, faced.api.analyze_stream) pins one
worker, because its tracker belongs to that worker's pipeline.

``analyze_pool_ctx`` is the ``cleanup_ctx``: it verifies every model file at startup (a
missing or corrupt model stops startup with the ModelError's one-line message, as a
``ConfigError`` so ``faced serve`` exits 78 naming the file and the fix) and shuts the
threads down at cleanup. A worker builds its interpreters on its own thread when its first
job comes, not at startup: a model set is ~19 MiB of packed weights and activations
(docs/performance.md, "Memory"), which a box nobody sends images to never pays; and frees
it again after ``idle_unload_s`` without a job or stream (faced.resident.settle then
returns the memory to the system: without ``malloc_trim`` glibc keeps the freed arena
pages, and the library pages only loading touched stay resident).

With one worker and live tracking running (``vision.analyze_shares_tracker_models``), the
worker takes the live tracker's loaded pipeline (``tracking_models``, faced.live) instead
of building its own set: ~19 MiB less. The pipeline's lock already serialises every call
on it, the tracker's and this worker's (never two threads in one interpreter), and an
IMAGE-mode call (``FacePipeline.analyze``) reads no tracker state, so its results are those
of an own set and the tracker's stream is undisturbed. When there is no tracker (camera off,
tracking off, not started) the worker loads its own, as before; its idle unload only lets go
of a shared set, which the tracker keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from aiohttp import web

from faced import resident
from faced.keys import ANALYZE_POOL_KEY
from faced.schemas.analysis import ModelInfo
from faced.vision.models import ModelStore, default_model_dir
from faced.vision.pipeline import DetectorMode, FacePipeline
from faced.vision.runtime import Runtime

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BACKLOG: Final = 4
"""Jobs that may wait per worker before new ones are refused: a request takes one frame's
inference (`faced bench analyze`), so four queued ones cost a client a few of those at most
before it would rather hear 503."""


class PoolBusy(Exception):
    """Every worker is busy and the backlog is full; try again shortly."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("every analyze worker is busy")
        self.retry_after_s = retry_after_s


@dataclass(eq=False)
class Worker:
    """One pipeline and the only thread that ever runs it (and loads it, on first use)."""

    index: int
    loader: Callable[[], FacePipeline]
    executor: ThreadPoolExecutor
    loaded: FacePipeline | None = None
    load: int = 0
    """Jobs submitted and not finished (running + waiting)."""
    done: int = 0
    streams: int = 0
    loads: int = 0
    """Times this worker took a model set, built or the tracker's (first use, and again
    after an unload): each is followed by a settle."""
    tracking_models: Callable[[], FacePipeline | None] | None = None
    """The live tracker's pipeline to use instead of loading one, when there is one."""
    sharing: bool = False
    """``loaded`` is the live tracker's pipeline, not this worker's own."""

    @property
    def pipeline(self) -> FacePipeline:
        """The loaded pipeline (``AnalyzePool.prepare`` or a first job loads it)."""
        if self.loaded is None:
            raise RuntimeError(f"analyze worker {self.index} has not loaded its models yet")
        return self.loaded

    def unload_here(self) -> None:
        """Free the pipeline if still idle: only ever called on this worker's thread."""
        if self.loaded is None or self.load > 0 or self.streams > 0:
            return
        self.loaded = None
        if self.sharing:  # the tracker keeps its models: nothing of ours to free
            self.sharing = False
            log.info("analyze worker %d let go of the live tracker's models (idle)", self.index)
            return
        gc.collect()  # the interpreters sit in reference cycles of LiteRT's wrappers
        # The freed arenas' pages, and the library pages only loading touched, go back
        # (1 s on this idle worker's thread; a job arriving meanwhile waits for it).
        resident.settle()
        log.info("analyze worker %d freed its models (idle)", self.index)

    def pipeline_here(self) -> FacePipeline:
        """The pipeline, loaded now if need be: only ever called on this worker's thread."""
        if self.loaded is None:
            tracking = self.tracking_models() if self.tracking_models is not None else None
            if tracking is not None:
                self.loaded, self.sharing = tracking, True
                self.loads += 1
                log.info("analyze worker %d uses the live tracker's models", self.index)
                return tracking
            with _native_stderr_logged():
                self.loaded = self.loader()
            self.loads += 1
            log.info("analyze worker %d loaded its models", self.index)
        return self.loaded


@dataclass(eq=False)
class AnalyzePool:
    workers: Sequence[Worker]
    model_info: ModelInfo
    runtime: Runtime
    """The verified files (``loaded``) and the back end, for /health before any load."""
    backlog: int = DEFAULT_BACKLOG
    idle_unload_s: float = 0.0
    """Free an idle worker's models after this long without a job or stream (0: never)."""
    rejected: int = 0
    on_job: Callable[[float], None] | None = None
    """Told each job's seconds, waiting included (faced.metrics), on the event loop."""
    _closed: bool = field(default=False, repr=False)
    _timers: dict[int, asyncio.TimerHandle] = field(default_factory=dict, repr=False)
    _settled_loads: int = field(default=0, repr=False)
    _settling: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls,
        size: int,
        *,
        model_dir: str | None = None,
        threads: int = 1,
        num_faces: int = 1,
        backlog: int = DEFAULT_BACKLOG,
        runtime: Runtime | None = None,
        detector: DetectorMode = "short",
        eager: bool = False,
        idle_unload_s: float = 0.0,
        tracking_models: Callable[[], FacePipeline | None] | None = None,
    ) -> AnalyzePool:
        """Verify the model files on ``runtime``'s back end and precision and make ``size``
        workers that load their pipeline on first use (``eager``: now). Blocking: call from
        a thread. ModelError if a model is missing or corrupt or the back end is not
        installed. ``tracking_models``: the live tracker's pipeline while there is one,
        loaded with these same settings; a single worker uses it instead of its own (with
        several, each keeps its own so that N workers still use N cores)."""
        directory = Path(model_dir) if model_dir else default_model_dir()
        checked = runtime.fresh() if runtime is not None else Runtime(threads=threads)
        model_info = FacePipeline.verify(ModelStore(directory), checked, detector)

        def loader() -> FacePipeline:
            return FacePipeline.load(
                directory,
                threads=threads,
                num_faces=num_faces,
                runtime=runtime.fresh() if runtime is not None else None,
                detector=detector,
            )

        workers = [
            Worker(
                index,
                loader,
                ThreadPoolExecutor(1, thread_name_prefix=f"analyze-{index}"),
                tracking_models=tracking_models if size == 1 else None,
            )
            for index in range(size)
        ]
        pool = cls(workers, model_info, checked, backlog=backlog, idle_unload_s=idle_unload_s)
        if eager:
            try:
                for worker in workers:
                    worker.pipeline_here()
            except BaseException:
                pool.close()
                raise
        return pool

    async def prepare(self, worker: Worker) -> FacePipeline:
        """``worker``'s pipeline, loaded on its own thread if this is its first use."""
        if worker.loaded is not None:
            return worker.loaded
        pipeline = await asyncio.get_running_loop().run_in_executor(
            worker.executor, worker.pipeline_here
        )
        self._settle_after_loading()
        return pipeline

    @property
    def size(self) -> int:
        return len(self.workers)

    @property
    def capacity(self) -> int:
        """Jobs admitted at once: one running per worker plus the backlog of each."""
        return self.size * (1 + self.backlog)

    @property
    def pending(self) -> int:
        return sum(worker.load for worker in self.workers)

    def least_loaded(self) -> Worker:
        return min(self.workers, key=lambda w: (w.load, w.streams, w.index))

    def pin_stream(self) -> Worker:
        """The worker a new stream (and its tracker) will use; ``release_stream`` after."""
        worker = min(self.workers, key=lambda w: (w.streams, w.load, w.index))
        worker.streams += 1
        return worker

    def release_stream(self, worker: Worker) -> None:
        worker.streams -= 1
        with contextlib.suppress(RuntimeError):  # no loop: nothing can be loaded either
            self._idle_timer(worker, asyncio.get_running_loop())

    async def run(self, job: Callable[[FacePipeline], T], *, worker: Worker | None = None) -> T:
        """Run ``job(pipeline)`` on a worker's thread. Unpinned jobs are refused with
        PoolBusy when the pool is full; a pinned job (a stream's frame, at most one in
        flight per stream) always gets in line on its worker."""
        if self._closed:
            raise PoolBusy(1.0)
        if worker is None:
            if self.pending >= self.capacity:
                self.rejected += 1
                raise PoolBusy(1.0)
            worker = self.least_loaded()
        worker.load += 1
        began = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(worker.executor, _on_pipeline, worker, job)
        finally:
            worker.load -= 1
            worker.done += 1
            if self.on_job is not None:
                self.on_job(time.perf_counter() - began)
            self._idle_timer(worker, loop)
            self._settle_after_loading()

    def _settle_after_loading(self) -> None:
        """Once a worker has taken a model set, give back what only taking it touched
        (faced.resident.settle_after: the library pages of LiteRT's model set-up, the freed
        start-up buffers, the first job's decoder pages); what the jobs use comes back at
        their next access."""
        loads = sum(worker.loads for worker in self.workers)
        if loads == self._settled_loads or self._closed:
            return
        self._settled_loads = loads
        if self._settling is None or self._settling.done():
            self._settling = asyncio.get_running_loop().create_task(
                resident.settle_after(), name="settle-analyze"
            )

    def _idle_timer(self, worker: Worker, loop: asyncio.AbstractEventLoop) -> None:
        """(Re)start ``worker``'s idle countdown; at its end the unload queues behind any
        job on the worker's own thread, so a job never finds its models gone."""
        if self.idle_unload_s <= 0 or self._closed:
            return
        previous = self._timers.pop(worker.index, None)
        if previous is not None:
            previous.cancel()

        def unload() -> None:
            self._timers.pop(worker.index, None)
            if not self._closed and worker.load == 0 and worker.streams == 0:
                worker.executor.submit(worker.unload_here)

        self._timers[worker.index] = loop.call_later(self.idle_unload_s, unload)

    def report(self) -> dict[str, object]:
        """For /health: cheap, no locks. ``loaded``: workers holding a model set of their
        own; ``sharing_tracker_models``: workers using the live tracker's."""
        return {
            "status": "ok",
            "workers": self.size,
            "pending": self.pending,
            "streams": sum(w.streams for w in self.workers),
            "loaded": sum(w.loaded is not None and not w.sharing for w in self.workers),
            "sharing_tracker_models": sum(w.sharing for w in self.workers),
            "analyzed": sum(w.done for w in self.workers),
            "rejected_busy": self.rejected,
        }

    def close(self) -> None:
        self._closed = True
        if self._settling is not None:
            self._settling.cancel()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for worker in self.workers:
            # Jobs already running finish on their own; waiting ones are dropped.
            worker.executor.shutdown(wait=False, cancel_futures=True)


def _on_pipeline(worker: Worker, job: Callable[[FacePipeline], T]) -> T:
    return job(worker.pipeline_here())


@contextlib.contextmanager
def _native_stderr_logged() -> Iterator[None]:
    """LiteRT's C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate" straight
    to fd 2, which breaks one-JSON-object-per-line logs: while models load (a moment, at
    startup), fd 2 goes to a temporary file whose lines are then logged properly."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read(64 * 1024).decode(errors="replace").splitlines():
                if line.strip():
                    log.debug("litert: %s", line.strip())


async def start_pool(
    size: int,
    *,
    model_dir: str,
    threads: int,
    num_faces: int,
    runtime: Runtime | None = None,
    detector: DetectorMode = "short",
    idle_unload_s: float = 0.0,
    tracking_models: Callable[[], FacePipeline | None] | None = None,
) -> AnalyzePool:
    """Load the pool off the event loop; a model problem becomes a ConfigError (exit 78)."""
    from faced.config import ConfigError  # noqa: PLC0415
    from faced.vision.models import ModelError  # noqa: PLC0415

    try:
        return await asyncio.to_thread(
            AnalyzePool.load,
            size,
            model_dir=model_dir,
            threads=threads,
            num_faces=num_faces,
            runtime=runtime,
            detector=detector,
            idle_unload_s=idle_unload_s,
            tracking_models=tracking_models,
        )
    except ModelError as exc:
        raise ConfigError(str(exc)) from None


def analyze_pool_ctx(
    size: int,
    *,
    model_dir: str,
    threads: int,
    num_faces: int,
    runtime: Runtime | None = None,
    detector: DetectorMode = "short",
    idle_unload_s: float = 0.0,
    tracking_models: Callable[[], FacePipeline | None] | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup_ctx that owns the pool for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await start_pool(
            size,
            model_dir=model_dir,
            threads=threads,
            num_faces=num_faces,
            runtime=runtime,
            detector=detector,
            idle_unload_s=idle_unload_s,
            tracking_models=tracking_models,
        )
        app[ANALYZE_POOL_KEY] = pool
        model = pool.model_info
        log.info(
            "analyze pool ready (models load on first use): %d worker(s), model %s %s",
            size,
            model.name,
            model.version,
            extra={"workers": size, "model_sha256": model.sha256},
        )
        try:
            yield
        finally:
            pool.close()

    return ctx


__all__ = [
    "DEFAULT_BACKLOG",
    "AnalyzePool",
    "PoolBusy",
    "Worker",
    "analyze_pool_ctx",
    "start_pool",
]
