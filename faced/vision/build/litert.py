"""The LiteRT side of `faced models build`: float16 weights folded to float32, then
ai-edge-quantizer's int8 recipes.

Owns ``float32_model`` (each float16 constant -> DEQUANTIZE pair folded into one float32
constant, which neither quantizer accepts otherwise, exact since every float16 is a float32;
a ``serving_default`` signature added where missing, as the quantizer calibrates through
signatures), the LiteRT recipes in order of preference (static int8, dynamic-range, mixed
precision where a model has one (``LITERT_MIXED``), weight-only) and ``litert_int8``.
ai-edge-litert's flatbuffer tools and ai-edge-quantizer (the ``build`` extra) are imported
when used.
Does not own which recipe is kept (faced.vision.build.derive) or the ONNX models.
Why: the Pi runs LiteRT; its int8 models come from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from faced.vision.build.spec import BuildError


def float32_model(model: bytes) -> bytes:
    """The model with every float16-constant -> DEQUANTIZE pair folded into one float32
    constant, unused tensors dropped, and a ``serving_default`` signature when it has none."""
    from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415
    from ai_edge_litert.tools import flatbuffer_utils  # noqa: PLC0415

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    codes = [flatbuffer_utils.get_builtin_code_from_operator_code(c) for c in tree.operatorCodes]
    for entry, code in zip(tree.operatorCodes, codes, strict=True):
        # Older converters filled only deprecated_builtin_code (builtin_code then reads 0,
        # ADD); the quantizer reads builtin_code, so state it.
        entry.builtinCode = code
    for subgraph in tree.subgraphs:
        kept = []
        for op in subgraph.operators:
            if codes[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE:
                source = subgraph.tensors[op.inputs[0]]
                target = subgraph.tensors[op.outputs[0]]
                buffer = tree.buffers[source.buffer]
                if source.type == schema.TensorType.FLOAT16 and buffer.data is not None:
                    values = np.frombuffer(bytes(bytearray(buffer.data)), dtype=np.float16)
                    folded = schema.BufferT()
                    folded.data = np.frombuffer(values.astype("<f4").tobytes(), dtype=np.uint8)
                    tree.buffers.append(folded)
                    target.buffer = len(tree.buffers) - 1
                    buffer.data = None
                    continue
            kept.append(op)
        subgraph.operators = kept
        _drop_unused_tensors(subgraph)
    if not tree.signatureDefs and len(tree.subgraphs) == 1:
        tree.signatureDefs = [_signature(schema, tree.subgraphs[0])]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def _drop_unused_tensors(subgraph: Any) -> None:
    used = set(subgraph.inputs) | set(subgraph.outputs)
    for op in subgraph.operators:
        used.update(i for i in op.inputs if i >= 0)
        used.update(op.outputs)
        if op.intermediates is not None:
            used.update(op.intermediates)
    order = sorted(used)
    new_index = {old: new for new, old in enumerate(order)}

    def remap(indices: Any) -> list[int]:
        return [new_index[i] if i >= 0 else i for i in indices]

    subgraph.tensors = [subgraph.tensors[i] for i in order]
    subgraph.inputs = remap(subgraph.inputs)
    subgraph.outputs = remap(subgraph.outputs)
    for op in subgraph.operators:
        op.inputs = remap(op.inputs)
        op.outputs = remap(op.outputs)
        if op.intermediates is not None:
            op.intermediates = remap(op.intermediates)


def _signature(schema: Any, subgraph: Any) -> Any:
    def tensor_map(index: int) -> Any:
        entry = schema.TensorMapT()
        name = subgraph.tensors[index].name
        entry.name = name.decode() if isinstance(name, bytes) else str(name)
        entry.tensorIndex = index
        return entry

    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [tensor_map(i) for i in subgraph.inputs]
    signature.outputs = [tensor_map(i) for i in subgraph.outputs]
    return signature


# Recipes in order of preference (fastest first); the first within LIMITS is kept.
LITERT_RECIPES: Final = (
    ("static_wi8_ai8", "static int8 (int8 weights and activations)"),
    ("dynamic_wi8_afp32", "dynamic-range int8 (int8 weights, activations quantized per run)"),
    ("weight_only_wi8_afp32", "weight-only int8 (int8 weights, float compute)"),
)


@dataclass(frozen=True, slots=True)
class MixedRecipe:
    """One of ai-edge-quantizer's recipes with the ops whose scope (their output tensor
    names, as the quantizer matches them) matches ``keep_float`` left in float."""

    role: str
    base: str
    keep_float: str
    description: str


# Mixed precision, tried after the uniform recipes of the same kind (before weight-only).
# Blendshapes: dynamic-range int8 runs XNNPACK's int8 kernels, faster than fp32 (`faced
# bench pipeline --backend litert`), but its first conv embeds the 146 raw point
# coordinates, and quantizing those per run cost most of the error (held-out max 0.105
# with it, 0.040 without; every other conv alone <= 0.016). That conv is 28 k
# multiply-adds: float costs nothing.
# Landmarks have none: per-op sensitivity (README) found no mix within the limits that is
# faster than float on XNNPACK.
LITERT_MIXED: Final = {
    "dynamic_wi8_afp32+float_point_embedding": MixedRecipe(
        role="blendshapes",
        base="dynamic_wi8_afp32",
        keep_float=r"MlpMixerGeneral/conv2d/",
        description="dynamic-range int8 but the point-embedding conv in float",
    ),
}


def litert_recipes(role: str) -> tuple[tuple[str, str], ...]:
    """(recipe name, description) to try for a model of ``role``, fastest first."""
    mixed = tuple((name, m.description) for name, m in LITERT_MIXED.items() if m.role == role)
    return (*LITERT_RECIPES[:2], *mixed, *LITERT_RECIPES[2:])


def litert_recipe(fp32: bytes, recipe_name: str) -> list[dict[str, Any]]:
    """ai-edge-quantizer's recipe (a list of rules, the last matching one wins) for a
    name from ``litert_recipes``; BuildError when a mixed recipe's float ops are not in
    the model (the recipe would silently quantize everything)."""
    from ai_edge_quantizer import recipe  # noqa: PLC0415

    mixed = LITERT_MIXED.get(recipe_name)
    if mixed is None:
        return list(getattr(recipe, recipe_name)())
    from ai_edge_litert.tools import flatbuffer_utils  # noqa: PLC0415
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils  # noqa: PLC0415

    tree = flatbuffer_utils.convert_bytearray_to_object(bytearray(fp32))
    scopes = [
        tfl_flatbuffer_utils.get_op_scope(op, subgraph.tensors)
        for subgraph in tree.subgraphs
        for op in subgraph.operators
    ]
    if not any(re.search(mixed.keep_float, scope) for scope in scopes):
        raise BuildError(f"recipe {recipe_name}: no op matches {mixed.keep_float!r}")
    rules = list(getattr(recipe, mixed.base)())
    rules.append({"regex": mixed.keep_float, "operation": "*", "algorithm_key": "no_quantize"})
    return rules


def litert_method(recipe_name: str) -> str:
    """How a recipe name is made, for the record."""
    mixed = LITERT_MIXED.get(recipe_name)
    if mixed is None:
        return f"ai-edge-quantizer recipe.{recipe_name}()"
    return (
        f"ai-edge-quantizer recipe.{mixed.base}() with the ops matching "
        f"{mixed.keep_float!r} left in float (no_quantize)"
    )


def litert_int8(fp32: bytes, samples: Sequence[npt.NDArray[np.float32]], recipe_name: str) -> bytes:
    """ai-edge-quantizer's recipe ``recipe_name`` (see ``litert_recipe``) applied to a
    float32 model."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    from ai_edge_quantizer import quantizer  # noqa: PLC0415

    worker = quantizer.Quantizer(bytearray(fp32))
    worker.load_quantization_recipe(litert_recipe(fp32, recipe_name))
    calibration = None
    if worker.need_calibration:
        # float32_model has given every model a signature: calibration goes through it.
        signatures = Interpreter(model_content=fp32).get_signature_list()
        key = next(iter(signatures))
        (input_name,) = signatures[key]["inputs"]
        calibration = worker.calibrate({key: [{input_name: x} for x in samples]}, num_threads=1)
    result = worker.quantize(calibration, enable_progress_report=False)
    return bytes(result.quantized_model)
