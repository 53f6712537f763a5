"""The inference port: load a model, describe its tensors, run it; back-end selection.

Owns the back ends behind one small port, and which file each back end and precision runs.
Does not own the pipeline's use of the models, or building derived files.
Why: the pipeline stays the same on a Pi's CPU, an x86 box and a Jetson's GPU.

One small interface (``InferenceModel``), two back
ends selected by config (``vision.backend``, ``vision.precision``, ``vision.threads``):

* ``litert``: ``ai_edge_litert`` (falling back to ``tflite_runtime``, same Interpreter API)
  with its default XNNPACK delegate; fp32 runs the bundle's own files, int8 the files
  ``faced models build`` derives.
* ``onnxruntime``: ONNX Runtime (optional extra ``onnx``) on the CPU, or on an NVIDIA GPU
  through the CUDA or TensorRT execution provider (``vision.onnx_provider``), TensorRT
  keeping its engines in ``vision.tensorrt_cache_dir`` so a start does not rebuild them.

``Runtime.open`` picks the file for the configured back end and precision, verifies it
(faced.vision.variants) and loads it; a back end that is not installed is a
``BackendUnavailable`` naming what to install. An interpreter or session is not
thread-safe: each pipeline owns its own models; ``run`` holds a per-model lock, so
accidental sharing serialises instead of corrupting results (both runtimes release the GIL
while they compute, so a worker thread does not stall the event loop).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from faced.resident import release_file_pages
from faced.vision.models import ModelError

if TYPE_CHECKING:
    from faced.vision.models import ModelStore

Backend = Literal["litert", "onnxruntime"]
Precision = Literal["fp32", "int8"]
OnnxProvider = Literal["auto", "cpu", "cuda", "tensorrt"]
BACKENDS: Final[tuple[Backend, ...]] = ("litert", "onnxruntime")
PRECISIONS: Final[tuple[Precision, ...]] = ("fp32", "int8")


class BackendUnavailable(ModelError):
    """The configured back end (or execution provider) is not installed here; the message
    says what to install. A ModelError, so startup reports it like a missing model
    (one line, exit 78)."""


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

    def run_filling(self, fill: Fill) -> list[npt.NDArray[Any]]:
        """``run`` on inputs that ``fill`` writes into the arrays it is handed (one per
        input, its shape and dtype; valid only during the call, never to be kept): the
        model's own input buffers where the back end allows it, which spares copying a
        made input into them (the landmark crop: 768 KiB a frame)."""
        ...


Fill = Callable[[Sequence[npt.NDArray[Any]]], object]
"""Writes a model's inputs into the arrays it is given (InferenceModel.run_filling)."""


def scratch_inputs(inputs: Sequence[TensorInfo]) -> list[npt.NDArray[Any]]:
    """One array per input, its shape and dtype: where a back end's ``run_filling`` has
    ``fill`` write when it copies its inputs in anyway (made once per model)."""
    return [np.empty(t.shape, dtype=t.dtype) for t in inputs]


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
        raise BackendUnavailable(
            "vision.backend = litert: no TFLite runtime; install ai-edge-litert "
            "(or tflite-runtime on platforms without LiteRT wheels: pip install 'faced[tflite]')"
        ) from None


class LiteRtModel:
    """A TFLite model on LiteRT / tflite-runtime with the default XNNPACK delegate.

    Given a path, LiteRT maps the file instead of holding a copy of it in memory, and once
    XNNPACK has packed the weights into its own buffers (``allocate_tensors``) the mapped
    pages are given back (faced.resident.release_file_pages): they stay in the page cache and are
    read again only if something still reads them (a few hundred KiB of the flatbuffer's
    tables do). On the tracker's three models that is 3.6 MiB of the daemon's resident
    memory, and as much again for each analyze worker's set (docs/performance.md)."""

    def __init__(self, model: bytes | Path, *, threads: int = 1, name: str = "model") -> None:
        interpreter_class, self.backend = _interpreter_class()
        self.name = name
        try:
            if isinstance(model, Path):
                self._interpreter = interpreter_class(model_path=str(model), num_threads=threads)
            else:
                self._interpreter = interpreter_class(model_content=model, num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"model {name}: LiteRT cannot load it: {exc}") from None
        if isinstance(model, Path):
            release_file_pages(model)
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        # A full-integer model (int8 in and out) still looks float to callers: inputs are
        # quantized and outputs dequantized here with the tensors' own scale/zero point.
        self._in_quant = tuple(_quantization(d) for d in inputs)
        self._out_quant = tuple(_quantization(d) for d in outputs)
        self.inputs = tuple(self._info(d) for d in inputs)
        self.outputs = tuple(self._info(d) for d in outputs)
        self._input_indices = tuple(t.index for t in self.inputs)
        self._output_indices = tuple(t.index for t in self.outputs)
        # run_filling writes straight into the interpreter's input buffers through views
        # these make, unless an input is quantized (then it is converted on its way in).
        self._input_views = (
            tuple(self._interpreter.tensor(index) for index in self._input_indices)
            if all(quant is None for quant in self._in_quant)
            else None
        )
        self._scratch: list[npt.NDArray[Any]] | None = None
        # LiteRT interpreters are not re-entrant; the lock makes accidental sharing safe
        # (uncontended it costs well under a microsecond).
        self._lock = threading.Lock()

    @staticmethod
    def _info(detail: dict[str, Any]) -> TensorInfo:
        quantized = _quantization(detail) is not None
        return TensorInfo(
            name=str(detail["name"]),
            shape=tuple(int(v) for v in detail["shape"]),
            dtype=np.dtype(np.float32) if quantized else np.dtype(detail["dtype"]),
            index=int(detail["index"]),
        )

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        with self._lock:
            return self._run(inputs)

    def run_filling(self, fill: Fill) -> list[npt.NDArray[Any]]:
        with self._lock:  # the filling too: the buffers filled are the model's
            if self._input_views is None:
                if self._scratch is None:
                    self._scratch = scratch_inputs(self.inputs)
                fill(self._scratch)
                return self._run(self._scratch)
            views = [view() for view in self._input_views]
            fill(views)
            # LiteRT refuses to invoke while a numpy view of its buffers is alive.
            del views
            self._interpreter.invoke()
            return self._outputs()

    def _run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        interpreter = self._interpreter
        for index, quant, value in zip(self._input_indices, self._in_quant, inputs, strict=True):
            interpreter.set_tensor(index, value if quant is None else quant.quantize(value))
        interpreter.invoke()
        return self._outputs()

    def _outputs(self) -> list[npt.NDArray[Any]]:
        interpreter = self._interpreter
        return [
            interpreter.get_tensor(index)
            if quant is None
            else quant.dequantize(interpreter.get_tensor(index))
            for index, quant in zip(self._output_indices, self._out_quant, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class _Quantization:
    scale: np.float32
    zero_point: np.float32
    dtype: np.dtype[Any]
    low: int
    high: int

    def quantize(self, value: npt.NDArray[Any]) -> npt.NDArray[Any]:
        scaled = np.rint(value / self.scale + self.zero_point)
        return np.clip(scaled, self.low, self.high, out=scaled).astype(self.dtype)

    def dequantize(self, value: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
        return (value.astype(np.float32) - self.zero_point) * self.scale


def _quantization(detail: dict[str, Any]) -> _Quantization | None:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if dtype not in (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16)) or not scale:
        return None
    info = np.iinfo(dtype)
    return _Quantization(
        np.float32(scale), np.float32(zero_point), dtype, int(info.min), int(info.max)
    )


def _onnxruntime() -> Any:
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        raise BackendUnavailable(
            "vision.backend = onnxruntime: onnxruntime is not installed; install it with "
            "`pip install 'faced[onnx]'` (on a Jetson: NVIDIA's onnxruntime-gpu wheel)"
        ) from None
    return onnxruntime


_ONNX_TYPES: Final[dict[str, np.dtype[Any]]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
}


def onnx_providers(
    wanted: OnnxProvider, available: Sequence[str], tensorrt_cache_dir: str
) -> list[str | tuple[str, dict[str, str]]]:
    """The execution providers for ``vision.onnx_provider``, best first; the CPU provider
    always last so unsupported nodes still run. BackendUnavailable when an explicitly
    requested GPU provider is not in this onnxruntime build."""
    has_trt = "TensorrtExecutionProvider" in available
    has_cuda = "CUDAExecutionProvider" in available
    install = "install NVIDIA's onnxruntime-gpu wheel (with CUDA/TensorRT) instead of onnxruntime"
    if wanted == "tensorrt" and not has_trt:
        raise BackendUnavailable(
            f"vision.onnx_provider = tensorrt: this onnxruntime has no TensorRT provider "
            f"(has {', '.join(available)}); {install}"
        )
    if wanted == "cuda" and not has_cuda:
        raise BackendUnavailable(
            f"vision.onnx_provider = cuda: this onnxruntime has no CUDA provider "
            f"(has {', '.join(available)}); {install}"
        )
    providers: list[str | tuple[str, dict[str, str]]] = []
    if has_trt and wanted in ("auto", "tensorrt"):
        Path(tensorrt_cache_dir).mkdir(parents=True, exist_ok=True)
        providers.append(
            (
                "TensorrtExecutionProvider",
                {
                    # Engines are built once per model, GPU and TensorRT version, then
                    # loaded from here (a build takes minutes on a Jetson).
                    "trt_engine_cache_enable": "True",
                    "trt_engine_cache_path": tensorrt_cache_dir,
                    "trt_timing_cache_enable": "True",
                    "trt_timing_cache_path": tensorrt_cache_dir,
                },
            )
        )
    if has_cuda and wanted in ("auto", "tensorrt", "cuda"):
        providers.append("CUDAExecutionProvider")
    providers.append("CPUExecutionProvider")
    return providers


class OnnxRuntimeModel:
    """An ONNX model on ONNX Runtime (CPU, CUDA or TensorRT execution provider)."""

    def __init__(
        self,
        model: bytes,
        *,
        threads: int = 1,
        name: str = "model",
        provider: OnnxProvider = "cpu",
        tensorrt_cache_dir: str = "",
    ) -> None:
        ort = _onnxruntime()
        self.name = name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads would spin for work between frames and burn a core.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        providers = onnx_providers(
            provider, ort.get_available_providers(), tensorrt_cache_dir or default_trt_cache()
        )
        try:
            self._session = ort.InferenceSession(model, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model {name}: ONNX Runtime cannot load it: {first}") from None
        self.providers = tuple(self._session.get_providers())
        self.backend = "onnxruntime/" + self.providers[0].removesuffix("ExecutionProvider").lower()
        self.inputs = tuple(self._info(i, t) for i, t in enumerate(self._session.get_inputs()))
        self.outputs = tuple(self._info(i, t) for i, t in enumerate(self._session.get_outputs()))
        self._input_names = tuple(t.name for t in self.inputs)
        self._output_names = [t.name for t in self.outputs]
        self._scratch: list[npt.NDArray[Any]] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _info(index: int, arg: Any) -> TensorInfo:
        dtype = _ONNX_TYPES.get(arg.type)
        if dtype is None:
            raise ModelError(f"ONNX tensor {arg.name}: unsupported type {arg.type}")
        # Symbolic dimensions (a batch left open by a converter) run with batch 1 here.
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in arg.shape)
        return TensorInfo(name=str(arg.name), shape=shape, dtype=dtype, index=index)

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        feed = dict(zip(self._input_names, inputs, strict=True))
        with self._lock:
            return list(self._session.run(self._output_names, feed))

    def run_filling(self, fill: Fill) -> list[npt.NDArray[Any]]:
        with self._lock:  # the filling too: the arrays filled are the model's
            if self._scratch is None:
                self._scratch = scratch_inputs(self.inputs)
            fill(self._scratch)
            feed = dict(zip(self._input_names, self._scratch, strict=True))
            return list(self._session.run(self._output_names, feed))


def default_trt_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "faced" / "tensorrt")


def load_model(model: bytes, *, threads: int = 1, name: str = "model") -> InferenceModel:
    """The default back end (LiteRT) for a .tflite model given as bytes."""
    return LiteRtModel(model, threads=threads, name=name)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """What a pipeline runs, as /health and `faced models list` report it."""

    file: str
    sha256: str
    backend: str


@dataclass(slots=True)
class Runtime:
    """Opens the pipeline's models on the configured back end and precision and records
    which files (and hashes) are in use."""

    backend: Backend = "litert"
    precision: Precision = "fp32"
    threads: int = 1
    onnx_provider: OnnxProvider = "auto"
    tensorrt_cache_dir: str = ""
    loaded: list[LoadedModel] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise BackendUnavailable(
                f"vision.backend = {self.backend!r}: expected one of {', '.join(BACKENDS)}"
            )
        if self.precision not in PRECISIONS:
            raise BackendUnavailable(
                f"vision.precision = {self.precision!r}: expected one of {', '.join(PRECISIONS)}"
            )
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @classmethod
    def from_config(cls, vision: Any, threads: int | None = None) -> Runtime:
        """From a ``VisionConfig`` (typed loosely: config must not import the vision
        package); ``threads`` overrides ``vision.threads``."""
        return cls(
            backend=vision.backend,
            precision=vision.precision,
            threads=threads or vision.threads,
            onnx_provider=vision.onnx_provider,
            tensorrt_cache_dir=vision.tensorrt_cache_dir,
        )

    def fresh(self) -> Runtime:
        """The same settings with nothing loaded yet (one per pipeline)."""
        return dataclasses.replace(self, loaded=[])

    def check_available(self) -> None:
        """BackendUnavailable now, before any file is read, when the back end is missing."""
        if self.backend == "onnxruntime":
            ort = _onnxruntime()
            if self.onnx_provider != "auto":
                onnx_providers(self.onnx_provider, ort.get_available_providers(), "")
        else:
            _interpreter_class()

    def verify(self, store: ModelStore, name: str) -> None:
        """Check model ``name`` as ``open`` would (back end installed, file present, hash)
        without loading it, and list it in ``loaded``: a pool that loads its models on first
        use still refuses to start on a missing or corrupt file."""
        from faced.vision import variants  # noqa: PLC0415

        self.check_available()
        verified = variants.read(store, name, self.backend, self.precision)
        if self.backend == "onnxruntime":
            first = onnx_providers(
                self.onnx_provider,
                _onnxruntime().get_available_providers(),
                self.tensorrt_cache_dir or default_trt_cache(),
            )[0]
            name = first if isinstance(first, str) else first[0]
            runs_on = "onnxruntime/" + name.removesuffix("ExecutionProvider").lower()
        else:
            runs_on = _interpreter_class()[1]
        self.loaded.append(LoadedModel(verified.file, verified.sha256, runs_on))

    def open(self, store: ModelStore, name: str) -> InferenceModel:
        """Model ``name`` of the bundle (e.g. face_detector.tflite) in this runtime's
        back end and precision, verified (ModelError names the file and the fix)."""
        from faced.vision import variants  # noqa: PLC0415  (variants reads the store)

        self.check_available()
        model: InferenceModel
        with variants.opened(store, name, self.backend, self.precision) as verified:
            if self.backend == "onnxruntime":
                model = OnnxRuntimeModel(
                    verified.data,
                    threads=self.threads,
                    name=verified.file,
                    provider=self.onnx_provider,
                    tensorrt_cache_dir=self.tensorrt_cache_dir,
                )
            else:
                # By path (the file verified and still open): mapped, not copied.
                model = LiteRtModel(verified.path, threads=self.threads, name=verified.file)
        self.loaded.append(LoadedModel(verified.file, verified.sha256, model.backend))
        return model
