"""Can two model sets in one process share XNNPACK's packed weights? Memory, speed, outputs.

The daemon holds the tracker's model set and, once an image comes, the analyze worker's
(the same three files). LiteRT's ``Interpreter`` (what faced.vision.runtime runs) gives no
way to configure its default XNNPACK delegate; only the ``CompiledModel`` API has XNNPACK's
weight cache (``CpuOptions.xnnpack_weight_cache_path``: a file that XNNPACK builds once and
every model then maps read-only). Each mode runs in a fresh child process: two sets loaded
and invoked, then settled as the daemon settles (faced.resident), then one frame's three
models timed. The table shows the child's VmRSS, RssAnon, RssFile and PSS (MiB), the
cache files' mappings, the frame's median, and whether every output equals the
``Interpreter``'s bit for bit.

    .venv/bin/python bench/weight_cache.py [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
MODELS: Final = ("face_detector", "face_landmarks_detector", "face_blendshapes")
MODES: Final = ("interpreter", "compiled", "compiled+cache")
FRAMES: Final = 60


def _memory() -> dict[str, float]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(line.split()[1]) / 1024
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                fields["Pss"] = int(line.split()[1]) / 1024
    return fields


def _child(mode: str, cache_dir: str) -> dict[str, Any]:
    import numpy as np  # noqa: PLC0415

    from faced import resident  # noqa: PLC0415

    class Interpreted:
        def __init__(self, path: Path) -> None:
            from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

            self.model = Interpreter(model_path=str(path), num_threads=1)
            self.model.allocate_tensors()
            self.inputs = self.model.get_input_details()
            self.outputs = self.model.get_output_details()
            self.shapes = [tuple(d["shape"]) for d in self.inputs]

        def run(self, values: list[Any]) -> list[Any]:
            for detail, value in zip(self.inputs, values, strict=True):
                self.model.set_tensor(detail["index"], value)
            self.model.invoke()
            return [self.model.get_tensor(d["index"]).copy() for d in self.outputs]

    class Compiled:
        def __init__(self, path: Path, cache: str) -> None:
            from ai_edge_litert.compiled_model import CompiledModel  # noqa: PLC0415
            from ai_edge_litert.options import CpuOptions, Options  # noqa: PLC0415

            cpu = CpuOptions(num_threads=1, xnnpack_weight_cache_path=cache)
            self.model = CompiledModel.from_file(str(path), options=Options(cpu_options=cpu))
            signature = next(iter(self.model.get_signature_list()))
            self.inputs = list(self.model.get_input_tensor_details(signature).values())
            self.outputs = list(self.model.get_output_tensor_details(signature).values())
            self.shapes = [tuple(d["shape"]) for d in self.inputs]
            self.in_buffers = self.model.create_input_buffers(0)
            self.out_buffers = self.model.create_output_buffers(0)

        def run(self, values: list[Any]) -> list[Any]:
            for buffer, value in zip(self.in_buffers, values, strict=True):
                buffer.write(value.ravel())
            self.model.run_by_index(0, self.in_buffers, self.out_buffers)
            return [
                buffer.read(int(np.prod(d["shape"])), np.float32).reshape(d["shape"])
                for buffer, d in zip(self.out_buffers, self.outputs, strict=True)
            ]

    def load_set() -> list[Any]:
        models: list[Any] = []
        for name in MODELS:
            path = ROOT / "models" / f"{name}.tflite"
            if mode == "interpreter":
                models.append(Interpreted(path))
            else:
                cache = os.path.join(cache_dir, f"{name}.xnn") if mode.endswith("cache") else ""
                models.append(Compiled(path, cache))
        return models

    rng = np.random.default_rng(1)
    sets = [load_set(), load_set()]
    inputs = [[rng.random(shape, dtype=np.float32) for shape in m.shapes] for m in sets[0]]
    outputs = [[m.run(x) for m, x in zip(models, inputs, strict=True)] for models in sets]
    resident.settle()
    for models in sets:  # what serving reads comes back, as in the daemon
        for model, values in zip(models, inputs, strict=True):
            model.run(values)
    memory = _memory()
    with open("/proc/self/maps") as maps:
        mappings = sum(1 for line in maps if line.rstrip().endswith(".xnn"))
    times = []
    for index in range(FRAMES + 5):
        start = time.perf_counter()
        for model, values in zip(sets[0], inputs, strict=True):
            model.run(values)
        if index >= 5:
            times.append(time.perf_counter() - start)
    times.sort()
    flat = [o.ravel().tolist() for per_set in outputs for per_model in per_set for o in per_model]
    return memory | {"mappings": mappings, "frame_ms": times[len(times) // 2] * 1e3, "out": flat}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="rounds, the modes alternated")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.cache_dir)))
        return 0
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    print(f"load: {os.getloadavg()[0]:.2f}; two sets of {', '.join(MODELS)}, settled")
    print(f"{'mode':<16}{'RSS':>7}{'anon':>7}{'file':>7}{'PSS':>7}{'maps':>6}{'ms':>7}  same")
    with tempfile.TemporaryDirectory() as cache_dir:
        reference = None
        for _ in range(args.runs):
            for mode in MODES:
                command = [sys.executable, __file__, "--child", mode, "--cache-dir", cache_dir]
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                reference = reference if reference is not None else row["out"]
                print(
                    f"{mode:<16}{row['VmRSS']:>7.1f}{row['RssAnon']:>7.1f}{row['RssFile']:>7.1f}"
                    f"{row['Pss']:>7.1f}{row['mappings']:>6}{row['frame_ms']:>7.2f}"
                    f"  {'yes' if row['out'] == reference else 'NO'}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
