"""The ONNX side of `faced models build`: tf2onnx's conversion of the float32 .tflite, made
reproducible and fast, and onnxruntime.quantization's int8.

Owns ``onnx_fp32`` (tf2onnx in a subprocess with a fixed hash seed, batch fixed to 1,
generated names and constant order canonicalised: tf2onnx's vary from run to run; then the
graph rewrites of faced.vision.build.onnx_rewrites) and ``onnx_int8`` (static QDQ, then
dynamic, with the recorded calibration inputs). onnx, tf2onnx and onnxruntime.quantization
(the ``build`` extra) are imported when used.
Does not own the rewrites themselves, which recipe is kept, or the LiteRT models.
Why: the ONNX Runtime back end (Jetson GPUs, x86) runs these files, and the record holds
their exact bytes.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from faced.vision.build.onnx_rewrites import (
    NCHWC_BLOCK,
    channels_padded,
    layer_norms_fused,
    prelu_as_convs,
)
from faced.vision.build.spec import BuildError

ONNX_RECIPES: Final = (
    ("static", "static int8 QDQ (int8 weights, uint8 activations)"),
    ("dynamic", "dynamic int8 (int8 weights, activations quantized per run)"),
)


def onnx_fp32(fp32_tflite: bytes, opset: int = 17) -> tuple[bytes, list[str], list[str]]:
    """tf2onnx's conversion (in a subprocess: it imports TensorFlow), the command, and the
    graph rewrites made for ONNX Runtime's CPU kernels (see ``prelu_as_convs``)."""
    import onnx  # noqa: PLC0415
    from onnx.tools import update_model_dims  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "model.tflite"
        target = Path(tmp) / "model.onnx"
        source.write_bytes(fp32_tflite)
        command = [
            sys.executable,
            "-m",
            "tf2onnx.convert",
            "--tflite",
            str(source),
            "--output",
            str(target),
            "--opset",
            str(opset),
        ]
        # tf2onnx's graph rewrites iterate over sets of names: with Python's per-process
        # hash seed the node order and generated names change from run to run; a fixed
        # seed makes the output byte-identical.
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "CUDA_VISIBLE_DEVICES": "",
        }
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0 or not target.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise BuildError(f"tf2onnx failed: {lines[-1] if lines else done.returncode}")
        model = onnx.load(str(target))
    # tf2onnx writes the (temporary) input path into the graph's doc string.
    model.graph.doc_string = "converted by tf2onnx from the float32 .tflite"
    _canonical_names(model.graph)
    rewrites = []
    if count := prelu_as_convs(model.graph):
        rewrites.append(f"{count} PRelu as Relu + 1x1 depthwise Convs")
    if count := layer_norms_fused(model.graph):
        rewrites.append(f"{count} layer norms as LayerNormalization")
    if platform.machine() == "x86_64" and (count := channels_padded(model.graph, NCHWC_BLOCK)):
        rewrites.append(f"{count} convolution chains padded to {NCHWC_BLOCK} channels")
    # tf2onnx leaves the batch dimension symbolic; the pipeline always runs batch 1.
    fixed = update_model_dims.update_inputs_outputs_dims(
        model,
        {i.name: [_dim(d) for d in i.type.tensor_type.shape.dim] for i in model.graph.input},
        {o.name: [_dim(d) for d in o.type.tensor_type.shape.dim] for o in model.graph.output},
    )
    onnx.checker.check_model(fixed)
    shown = [
        "python",
        "-m",
        "tf2onnx.convert",
        "--tflite",
        "<name>.fp32.tflite",
        "--output",
        "<name>.onnx",
        "--opset",
        str(opset),
    ]
    return fixed.SerializeToString(), shown, rewrites


_GENERATED = re.compile(r"^(.*?)__\d+(:\d+)?$")


def _canonical_names(graph: Any) -> None:
    """tf2onnx numbers the names it makes up (``const_fold_opt__374``) from a process-wide
    counter whose value varies from run to run; renumber them (and every constant) in order
    of first use so the same graph always serialises to the same bytes."""
    renamed: dict[str, str] = {}

    def canonical(name: str) -> str:
        if not name:
            return name
        if name not in renamed:
            match = _GENERATED.match(name)
            renamed[name] = f"{match.group(1)}__g{len(renamed)}" if match else name
        return renamed[name]

    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    # Equal constants are merged under whichever of their names tf2onnx meets first, which
    # varies too: constants are named by order of first use instead.
    constants = {t.name for t in graph.initializer}
    for node in graph.node:
        for name in node.input:
            if name in constants and name not in renamed:
                renamed[name] = f"const__{len(renamed)}"
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = name if name in keep else canonical(name)
        for i, name in enumerate(node.output):
            node.output[i] = name if name in keep else canonical(name)
        node.name = canonical(node.name)
    for tensor in graph.initializer:
        tensor.name = canonical(tensor.name)
    # The initializer list's order varies too (it is a set to ONNX): sort it by name.
    ordered = sorted(graph.initializer, key=lambda t: t.name)
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    for info in graph.value_info:
        info.name = canonical(info.name)


def _dim(dim: Any) -> int:
    return int(dim.dim_value) if dim.HasField("dim_value") and dim.dim_value > 0 else 1


def onnx_int8(
    fp32_onnx: bytes, samples: Sequence[npt.NDArray[np.float32]], recipe_name: str
) -> bytes:
    from onnxruntime import quantization as q  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "model.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        target = Path(tmp) / "model.int8.onnx"
        source.write_bytes(fp32_onnx)
        q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        if recipe_name == "static":
            import onnx  # noqa: PLC0415

            input_name = onnx.load(str(prepared)).graph.input[0].name
            q.quantize_static(
                str(prepared),
                str(target),
                _Reader(input_name, samples),
                quant_format=q.QuantFormat.QDQ,
                per_channel=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=q.CalibrationMethod.MinMax,
            )
        else:
            q.quantize_dynamic(str(prepared), str(target), weight_type=q.QuantType.QInt8)
        return target.read_bytes()


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader over recorded inputs."""

    def __init__(self, name: str, samples: Sequence[npt.NDArray[np.float32]]) -> None:
        self._items = iter([{name: x} for x in samples])

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - the MinMax calibrator reads once
        pass
