"""faced.bench.stalls: each collection timed under its generation and thread; the run delay
and busy time read from the real /proc."""

from __future__ import annotations

import array
import gc
import math
import threading
from pathlib import Path

import pytest

from faced.bench.stalls import (
    PAUSE_BIN_MS,
    CpuWait,
    GcPauses,
    histogram_quantile,
    machine_busy_s,
    process_cpu_wait_ns,
)

needs_schedstat = pytest.mark.skipif(
    not Path("/proc/thread-self/schedstat").exists(), reason="the kernel has no schedstat"
)


def test_each_collection_counts_under_its_generation_and_thread() -> None:
    pauses = GcPauses()
    pauses.start()
    try:
        gc.collect(2)  # not measuring yet: the warm-up's collections are left out
        assert pauses.generations[2].count == 0
        pauses.measuring = True
        gc.collect(2)
        gc.collect(1)
        elsewhere = threading.Thread(target=gc.collect, args=(2,))
        elsewhere.start()
        elsewhere.join()
    finally:
        pauses.stop()
    gc.collect(2)  # stopped: no longer timed
    full, middle = pauses.generations[2], pauses.generations[1]
    assert (full.count, full.on_loop_thread) == (2, 1)
    assert (middle.count, middle.on_loop_thread) == (1, 1)
    assert full.total_ms >= full.max_ms > 0
    assert full.max_cpu_ms > 0
    assert pauses.interval_ms == pytest.approx(
        sum(generation.total_ms for generation in pauses.generations)
    )
    summary = pauses.summary()["generations"][2]
    assert summary["count"] == 2
    assert summary["p50_ms"] <= summary["p99_ms"]


def test_histogram_quantile_is_the_upper_edge_of_the_bin() -> None:
    bins = array.array("L", [0, 3, 0, 1])
    assert histogram_quantile(bins, PAUSE_BIN_MS, 0.5) == pytest.approx(2 * PAUSE_BIN_MS)
    assert histogram_quantile(bins, PAUSE_BIN_MS, 1.0) == pytest.approx(4 * PAUSE_BIN_MS)
    assert math.isnan(histogram_quantile(array.array("L", [0, 0]), 1.0, 0.5))


@needs_schedstat
def test_cpu_wait_and_busy_time_never_go_back() -> None:
    wait = CpuWait()
    assert wait.available
    first, busy = wait.ns(), machine_busy_s()
    assert wait.ns() >= first >= 0
    assert machine_busy_s() >= busy > 0  # clock ticks: may not have moved yet
    assert process_cpu_wait_ns() >= 0
    wait.close()
    assert not wait.available
    assert wait.ns() == 0
