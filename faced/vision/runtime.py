"""The inference port: load a model, describe its tensors, run it.

Owner: faced.vision (face pipeline). One small interface (``InferenceModel``) so other back
ends (ONNX Runtime, int8 models) can slot in later. The LiteRT back end uses
``ai_edge_litert`` and falls back to ``tflite_runtime`` (same Interpreter API); XNNPACK is
the default delegate of both. An interpreter is not thread-safe: each pipeline owns its own
models; ``run`` holds a per-model lock, so accidental sharing serialises instead of corrupting
results (LiteRT releases the GIL during invoke, so a worker thread does not stall the event
loop).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    index: int


class InferenceModel(Protocol):
    """A loaded model bound to one thread at a time."""

    backend: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        """Run the model on ``inputs`` (in input order, exact shape and dtype) and return
        fresh copies of every output, in output order."""
        ...


def _interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

        return Interpreter, "litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # noqa: PLC0415

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise RuntimeError(
            "no TFLite runtime: install ai-edge-litert (or tflite-runtime on platforms "
            "without LiteRT wheels)"
        ) from None


class LiteRtModel:
    """A TFLite model on LiteRT / tflite-runtime with the default XNNPACK delegate."""

    def __init__(self, model: bytes, *, threads: int = 1, name: str = "model") -> None:
        interpreter_class, self.backend = _interpreter_class()
        self.name = name
        self._interpreter = interpreter_class(model_content=model, num_threads=threads)
        self._interpreter.allocate_tensors()
        self.inputs = tuple(self._info(d) for d in self._interpreter.get_input_details())
        self.outputs = tuple(self._info(d) for d in self._interpreter.get_output_details())
        self._input_indices = tuple(t.index for t in self.inputs)
        self._output_indices = tuple(t.index for t in self.outputs)
        # LiteRT interpreters are not re-entrant; the lock makes accidental sharing safe
        # (uncontended it costs well under a microsecond).
        self._lock = threading.Lock()

    @staticmethod
    def _info(detail: dict[str, Any]) -> TensorInfo:
        return TensorInfo(
            name=str(detail["name"]),
            shape=tuple(int(v) for v in detail["shape"]),
            dtype=np.dtype(detail["dtype"]),
            index=int(detail["index"]),
        )

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        interpreter = self._interpreter
        with self._lock:
            for index, value in zip(self._input_indices, inputs, strict=True):
                interpreter.set_tensor(index, value)
            interpreter.invoke()
            return [interpreter.get_tensor(index) for index in self._output_indices]


def load_model(model: bytes, *, threads: int = 1, name: str = "model") -> InferenceModel:
    """The default back end for a .tflite model given as bytes."""
    return LiteRtModel(model, threads=threads, name=name)
