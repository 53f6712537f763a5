"""The camera opens and delivers frames at the configured rate."""

from __future__ import annotations

from conftest import Camera, measure_fps


def test_camera_delivers_frames_at_the_configured_fps(
    camera: Camera, configured_fps: float
) -> None:
    frame = camera.read()
    assert frame.ndim == 3 and frame.shape[2] == 3, f"{camera.name}: frame shape {frame.shape}"
    assert frame.std() > 1.0, f"{camera.name}: the frame is flat (lens cap? wrong format?)"
    frames, fps = measure_fps(camera, seconds=5.0)
    print(
        f"\n{camera.name}: {frames} frames in 5 s = {fps:.1f} fps (configured {configured_fps:g})"
    )
    assert fps >= 0.9 * configured_fps, f"{camera.name}: {fps:.1f} fps < 90% of {configured_fps:g}"
