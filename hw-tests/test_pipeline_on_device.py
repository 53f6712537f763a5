"""The face pipeline's per-frame time and fps on this device, on live camera frames.

Prints the figures (a measurement, not a timed test).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from conftest import Camera


def test_pipeline_per_frame_time_on_live_frames(camera: Camera, pipeline: Any) -> None:
    tracker = pipeline.tracker()
    per_frame_ms: list[float] = []
    faces = 0
    started = time.perf_counter()
    for index in range(150):
        frame = camera.read()
        began = time.perf_counter()
        result = tracker.process(frame, timestamp_ms=int((began - started) * 1000) + index)
        per_frame_ms.append((time.perf_counter() - began) * 1000)
        faces += bool(result.faces)
    elapsed = time.perf_counter() - started
    per_frame_ms.sort()
    p50 = statistics.median(per_frame_ms)
    p95 = per_frame_ms[int(len(per_frame_ms) * 0.95)]
    print(
        f"\npipeline on {camera.name}: per frame p50 {p50:.1f} ms, p95 {p95:.1f} ms; "
        f"loop {len(per_frame_ms) / elapsed:.1f} fps; face in {faces}/{len(per_frame_ms)} frames"
    )
    assert len(per_frame_ms) == 150
