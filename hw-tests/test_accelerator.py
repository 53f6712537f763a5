"""The accelerator on the device: ONNX Runtime's GPU providers on a Jetson (or any NVIDIA
GPU), and int8 against fp32 on a Raspberry Pi's NEON - the figures an x86 VM without a GPU
cannot give.

Inputs: the verified demo photograph moving as the demo camera moves it
(faced.vision.synthetic), so no camera is needed. Each test skips with the reason where its
hardware, provider or derived models are absent; they assert the accuracy bounds below and
print the speed figures side by side (measurements, not timed tests).

  FACED_HW_FRAMES   frames per side (default 150)
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FRAMES = int(os.environ.get("FACED_HW_FRAMES", "150"))
ONNX_EQUIVALENT_MEAN = 0.005  # ONNX fp32 against LiteRT fp32, blendshape mean |d|
INT8_MEAN, INT8_MAX = 0.03, 0.15  # int8 against fp32, blendshapes


def _store() -> Any:
    from faced.vision.models import ModelStore, default_model_dir  # noqa: PLC0415

    return ModelStore(default_model_dir())


def _frames() -> list[Any]:
    from faced.devices.demo_photo import DemoPhotoError, photo_path, read_verified  # noqa: PLC0415
    from faced.vision.models import default_model_dir  # noqa: PLC0415
    from faced.vision.synthetic import load_photo, synthetic_frames  # noqa: PLC0415

    model_dir = Path(default_model_dir())
    try:
        read_verified(model_dir)
    except DemoPhotoError as error:
        pytest.skip(f"demo photograph not installed: {error}")
    return list(synthetic_frames(load_photo(photo_path(model_dir)), FRAMES))


def _run(runtime: Any, frames: list[Any]) -> tuple[list[dict[str, float]], float, list[str]]:
    """Blendshapes per frame, median ms per frame, and which file ran where."""
    from faced.vision.pipeline import FacePipeline  # noqa: PLC0415

    pipeline = FacePipeline(_store(), runtime=runtime)
    tracker = pipeline.tracker()
    shapes, times = [], []
    for index, frame in enumerate(frames):
        began = time.perf_counter()
        result = tracker.process(frame, index * 33)
        times.append((time.perf_counter() - began) * 1000)
        assert result.faces, f"no face on frame {index}"
        shapes.append(dict(result.faces[0].blendshapes))
    return (
        shapes,
        statistics.median(times[5:]),
        [f"{m.file} on {m.backend}" for m in runtime.loaded],
    )


def _differences(want: list[dict[str, float]], got: list[dict[str, float]]) -> tuple[float, float]:
    deltas = [abs(w[name] - g[name]) for w, g in zip(want, got, strict=True) for name in w]
    return float(np.mean(deltas)), max(deltas)


def _onnxruntime_providers() -> list[str]:
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        pytest.skip("onnxruntime is not installed (on a Jetson: NVIDIA's onnxruntime-gpu)")
    return list(onnxruntime.get_available_providers())


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_provider_gives_litert_fp32_faces(provider: str, tmp_path: Path) -> None:
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    name = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[provider]
    available = _onnxruntime_providers()
    if name not in available:
        pytest.skip(f"this onnxruntime has no {name} (has {', '.join(available)})")
    frames = _frames()
    want, cpu_ms, _ = _run(Runtime("litert", "fp32"), frames)
    gpu = Runtime("onnxruntime", "fp32", onnx_provider=provider, tensorrt_cache_dir=str(tmp_path))
    got, gpu_ms, ran_on = _run(gpu, frames)
    mean, worst = _differences(want, got)
    print(
        f"\n{provider}: {gpu_ms:.2f} ms/frame against LiteRT fp32 on the CPU {cpu_ms:.2f} "
        f"(median of {len(frames)} tracked frames); {ran_on}; "
        f"blendshapes mean |d| {mean:.5f}, max {worst:.4f}"
    )
    assert all(where.endswith(f" on onnxruntime/{provider}") for where in ran_on), ran_on
    assert mean <= ONNX_EQUIVALENT_MEAN


def test_tensorrt_engines_are_built_once(tmp_path: Path) -> None:
    from faced.vision.runtime import Runtime  # noqa: PLC0415

    if "TensorrtExecutionProvider" not in _onnxruntime_providers():
        pytest.skip("this onnxruntime has no TensorrtExecutionProvider")
    frames = _frames()[:3]

    def start() -> float:
        began = time.perf_counter()
        runtime = Runtime(
            "onnxruntime", "fp32", onnx_provider="tensorrt", tensorrt_cache_dir=str(tmp_path)
        )
        _run(runtime, frames)
        return time.perf_counter() - began

    first = start()
    engines = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.engine")}
    second = start()
    print(f"\nTensorRT: first start {first:.1f} s (engines built), second {second:.1f} s")
    assert engines, f"no engine was cached in {tmp_path}"
    # The second start loaded the cached engines: none was rebuilt.
    assert {path: path.stat().st_mtime_ns for path in engines} == engines


def test_int8_against_fp32_on_this_cpu() -> None:
    from faced.vision.runtime import Runtime  # noqa: PLC0415
    from faced.vision.variants import record_path  # noqa: PLC0415

    if platform.machine() != "aarch64":
        pytest.skip(f"the NEON figure needs an aarch64 CPU (this is {platform.machine()})")
    if not record_path(_store()).is_file():
        pytest.skip("no derived models here: run `make models-build` (needs the build extra)")
    frames = _frames()
    want, fp32_ms, _ = _run(Runtime("litert", "fp32"), frames)
    got, int8_ms, ran_on = _run(Runtime("litert", "int8"), frames)
    mean, worst = _differences(want, got)
    print(
        f"\nLiteRT on {platform.machine()}, one thread: int8 {int8_ms:.2f} ms/frame against fp32 "
        f"{fp32_ms:.2f} ({int8_ms / fp32_ms:.2f}x); {ran_on}; blendshapes mean "
        f"|d| {mean:.4f}, max {worst:.4f}"
    )
    assert mean <= INT8_MEAN and worst <= INT8_MAX
