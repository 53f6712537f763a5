"""Where an event loop's lateness comes from: the collector's pauses, or the machine's.

Owns: timing each cyclic-GC collection of this process (``GcPauses``, through
``gc.callbacks``: per generation, and whether it ran on the loop's thread or another,
whose collection holds the interpreter lock the loop then waits for), and how long a
thread was runnable but had no CPU (``CpuWait``: the run delay of Linux's
/proc/thread-self/schedstat, the machine's other work taking the core, never the
daemon's own). Does not own the lag probe (faced.bench.soak) or the collector's settings
(faced.interpreter).

Why: on a shared machine a 5 ms sleep's lateness mixes the daemon's own stalls (a long
callback, a collection, another thread holding the lock) with the kernel giving the core
to someone else; these two figures let a reader tell them apart.
"""

from __future__ import annotations

import array
import gc
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

PAUSE_BIN_MS: Final = 0.01
PAUSE_BINS: Final = 100_000  # up to 1 s; longer pauses land in the last bin
LONG_PAUSE_MS: Final = 5.0
"""Collections at least this long are also kept one by one (when, generation, thread)."""
_SCHEDSTAT: Final = "/proc/thread-self/schedstat"


def histogram_quantile(bins: array.array[int], bin_width: float, q: float) -> float:
    """The upper edge of the bin holding quantile ``q``; NaN for an empty histogram."""
    total = sum(bins)
    if not total:
        return float("nan")
    target, seen = q * total, 0
    for index, count in enumerate(bins):
        seen += count
        if seen >= target:
            return (index + 1) * bin_width
    return len(bins) * bin_width


@dataclass
class GenerationPauses:
    """One generation's collections: how many, their total and their distribution."""

    count: int = 0
    on_loop_thread: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    max_cpu_ms: float = 0.0
    """The most CPU one collection used: its wall time less what the kernel took away
    (a collection whose thread lost its CPU half-way lasts long but costs little)."""
    bins: array.array[int] = field(default_factory=lambda: array.array("L", bytes(8 * PAUSE_BINS)))

    def add(self, pause_ms: float, cpu_ms: float, on_loop: bool) -> None:
        self.count += 1
        self.on_loop_thread += on_loop
        self.total_ms += pause_ms
        self.max_ms = max(self.max_ms, pause_ms)
        self.max_cpu_ms = max(self.max_cpu_ms, cpu_ms)
        self.bins[min(PAUSE_BINS - 1, int(pause_ms / PAUSE_BIN_MS))] += 1

    def quantile(self, q: float) -> float:
        return histogram_quantile(self.bins, PAUSE_BIN_MS, q)

    def summary(self) -> dict[str, float]:
        return {
            "count": self.count,
            "on_loop_thread": self.on_loop_thread,
            "total_ms": round(self.total_ms, 2),
            "p50_ms": self.quantile(0.5),
            "p99_ms": self.quantile(0.99),
            "max_ms": round(self.max_ms, 3),
            "max_cpu_ms": round(self.max_cpu_ms, 3),
        }


class GcPauses:
    """Times every collection of this process while started; ``measuring`` gates what
    counts (the warm-up's collections are left out). One collection runs at a time (the
    collector holds the interpreter lock), so one start time suffices."""

    def __init__(self, loop_thread: int | None = None) -> None:
        self.loop_thread = threading.get_ident() if loop_thread is None else loop_thread
        self.generations = [GenerationPauses() for _ in range(3)]
        self.long: list[tuple[float, int, bool, float]] = []
        """(seconds since ``origin``, generation, on the loop's thread, pause ms)"""
        self.measuring = False
        self.origin = time.perf_counter()
        self.interval_ms = 0.0
        """Pause time since the caller last reset it (the sample's share)."""
        self._started = 0.0
        self._started_cpu = 0.0

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        now, cpu = time.perf_counter(), time.thread_time()  # the collecting thread's
        if phase == "start":
            self._started, self._started_cpu = now, cpu
            return
        if not self.measuring:
            return
        pause_ms = (now - self._started) * 1000
        cpu_ms = (cpu - self._started_cpu) * 1000
        on_loop = threading.get_ident() == self.loop_thread
        generation = info["generation"]
        self.generations[generation].add(pause_ms, cpu_ms, on_loop)
        self.interval_ms += pause_ms
        if pause_ms >= LONG_PAUSE_MS:
            self.long.append((round(now - self.origin, 3), generation, on_loop, pause_ms))

    def summary(self) -> dict[str, Any]:
        return {
            "generations": [generation.summary() for generation in self.generations],
            "long": self.long,
        }


class CpuWait:
    """The run delay of the thread that made it: nanoseconds it was runnable with no CPU
    to run on. Read with one pread of a file kept open (a microsecond: cheap enough for
    every probe). ``available`` is False where the kernel has no schedstat."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(_SCHEDSTAT, os.O_RDONLY)
        except OSError:
            self._fd = None

    @property
    def available(self) -> bool:
        return self._fd is not None

    def ns(self) -> int:
        if self._fd is None:
            return 0
        # "<ns on a CPU> <ns runnable, waiting for one> <timeslices>"
        return int(os.pread(self._fd, 96, 0).split()[1])

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def process_cpu_wait_ns(pid: int | None = None) -> int:
    """The run delay of every thread of a process so far, summed (threads that ended are
    not counted: compare two readings only while the same threads live)."""
    total = 0
    task_dir = f"/proc/{pid or os.getpid()}/task"
    try:
        tasks = os.listdir(task_dir)
    except OSError:
        return 0
    for task in tasks:
        try:
            with open(f"{task_dir}/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended between the listing and the read
    return total


def machine_busy_s() -> float:
    """CPU seconds every core of the machine has been busy so far, steal included (a
    virtual machine's host running someone else); NaN without /proc/stat."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return math.nan
    # user nice system idle iowait irq softirq steal (guest time is inside user's)
    busy = sum(int(value) for index, value in enumerate(fields[:8]) if index not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")
