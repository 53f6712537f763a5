"""Graph rewrites of the converted ONNX models for ONNX Runtime's CPU kernels: the same
function, faster kernels.

Owns ``prelu_as_convs`` (PRelu as Relu + 1x1 depthwise Convs), ``channels_padded`` (narrow
convolution chains padded to the blocked layout's channel block, x86 only) and
``layer_norms_fused`` (tf2onnx's spelt-out layer norms as one LayerNormalization).
Does not own the conversion (faced.vision.build.onnx_export) or measuring the gain: that is
`faced bench pipeline --backend onnxruntime`, run with and without a rewrite.
Why: each rewrite removes kernels ONNX Runtime runs slowly or with layout reorders around
them; the held-out check still compares the result with the float LiteRT model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt


def prelu_as_convs(graph: Any) -> int:
    """Rewrite every per-channel ``PRelu`` of a 4-D NCHW tensor as
    ``Conv_dw(Relu(x), 1 - a) + Conv_dw(x, a)`` (1x1 depthwise Convs; the same function:
    a·x + (1 - a)·max(x, 0) is x for x > 0 and a·x below); returns how many.

    Why: ONNX Runtime's CPU PRelu is a scalar broadcast loop with no blocked-layout (NCHWc)
    kernel, so each one also costs two layout reorders; the landmark model has 69 of them,
    most of its time. Relu, 1x1 depthwise Conv and the Add (fused into the second Conv as
    its sum) all stay in ONNX Runtime's blocked layout; where no slope exceeds 1 the Relu
    moves after its Conv and fuses into it (26 of the 69). XNNPACK runs PReLU as its own
    vectorised NHWC operator, so the LiteRT models keep it. The gain: `faced bench pipeline
    --backend onnxruntime --precision fp32`, with and without this rewrite."""
    from onnx import helper, numpy_helper  # noqa: PLC0415

    constants = {t.name: t for t in graph.initializer}
    nodes: list[Any] = []
    added: list[Any] = []
    count = 0
    for node in graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" else None
        values = numpy_helper.to_array(slope).astype(np.float32) if slope is not None else None
        # Only a slope per channel (1, C, 1, 1) or (C, 1, 1): other broadcasts stay PRelu.
        if values is None or values.ndim not in (3, 4) or values.size != values.shape[-3]:
            nodes.append(node)
            continue
        channels = values.size
        slopes = values.reshape(channels, 1, 1, 1)
        (x,), (out,), stem = node.input[:1], node.output, node.name or f"prelu{count}"
        added += [
            numpy_helper.from_array(slopes, f"{stem}/slope"),
            numpy_helper.from_array((1.0 - slopes).astype(np.float32), f"{stem}/one_minus_slope"),
        ]
        slope_x = helper.make_node(
            "Conv",
            [x, f"{stem}/slope"],
            [f"{stem}/slope_x"],
            name=f"{stem}/slope_x",
            group=channels,
        )
        if (slopes <= 1.0).all():
            # (1 - a)·max(x, 0) = max((1 - a)·x, 0) when no slope exceeds 1: the Relu then
            # fuses into the Conv before it (no pass of its own).
            nodes += [
                slope_x,
                helper.make_node(
                    "Conv",
                    [x, f"{stem}/one_minus_slope"],
                    [f"{stem}/rest_linear"],
                    name=f"{stem}/rest_linear",
                    group=channels,
                ),
                helper.make_node(
                    "Relu", [f"{stem}/rest_linear"], [f"{stem}/rest"], name=f"{stem}/rest"
                ),
            ]
        else:
            nodes += [
                helper.make_node("Relu", [x], [f"{stem}/relu"], name=f"{stem}/relu"),
                slope_x,
                helper.make_node(
                    "Conv",
                    [f"{stem}/relu", f"{stem}/one_minus_slope"],
                    [f"{stem}/rest"],
                    name=f"{stem}/rest",
                    group=channels,
                ),
            ]
        nodes.append(
            helper.make_node("Add", [f"{stem}/rest", f"{stem}/slope_x"], [out], name=f"{stem}/sum")
        )
        count += 1
    if count:
        del graph.node[:]
        graph.node.extend(nodes)
        graph.initializer.extend(added)
        _drop_unused_initializers(graph)  # the slopes
    return count


# ONNX Runtime's blocked (NCHWc) convolutions on x86 with AVX-512 take channels in blocks of
# 16; a tensor with fewer runs in plain NCHW with a layout reorder either side.
NCHWC_BLOCK: Final = 16


def channels_padded(graph: Any, block: int) -> int:
    """Pad each convolution whose output channel count is not a multiple of ``block`` with
    zero filters up to the next multiple, through the per-channel ops after it (Relu, Add
    of two padded tensors, depthwise Conv) to the convolutions that read it (zero input
    weights for the extra channels): the same function, with only blocked-layout kernels.
    Returns how many such chains were padded; a chain that reaches anything else (a graph
    output, a pool, an Add with an unpadded tensor) is left alone.

    Why: the landmark model's four 8-channel bottlenecks at 128x128 and the full-range
    detector's narrow convolutions ran in NCHW with layout reorders around them; padded,
    they run faster on AVX-512 (`faced bench pipeline --backend onnxruntime --precision
    fp32`, with and without). Only on x86 (see the caller): where ONNX Runtime has no
    blocked layout (the PyPI aarch64 wheel) the extra channels are pure cost."""
    from onnx import helper, numpy_helper  # noqa: PLC0415

    constants = {t.name: t for t in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            users.setdefault(name, []).append(node)

    def group(node: Any) -> int:
        found = [helper.get_attribute_value(a) for a in node.attribute if a.name == "group"]
        return int(found[0]) if found else 1

    def weights(node: Any, index: int) -> Any:
        tensor = constants.get(node.input[index]) if len(node.input) > index else None
        return None if tensor is None else numpy_helper.to_array(tensor)

    def chain(start: Any, channels: int) -> tuple[list[Any], list[Any]] | None:
        """(per-channel nodes, reading convolutions) after ``start``, or None."""
        inner: list[Any] = []
        readers: list[Any] = []
        seen: set[int] = set()
        padded = {start.output[0]}
        pending = [start.output[0]]
        while pending:
            for node in users.get(pending.pop(), []):
                if id(node) in seen:
                    continue
                kernel = weights(node, 1) if node.op_type == "Conv" else None
                if node.op_type == "Add" and not all(i in padded for i in node.input):
                    continue  # until its other input is reached too (checked below)
                depthwise = kernel is not None and kernel.shape[:2] == (channels, 1)
                if node.op_type in ("Relu", "Add") or (depthwise and group(node) == channels):
                    inner.append(node)
                elif kernel is not None and group(node) == 1 and kernel.shape[1] == channels:
                    readers.append(node)
                    seen.add(id(node))
                    continue
                else:
                    return None
                seen.add(id(node))
                padded.add(node.output[0])
                pending.append(node.output[0])
        outputs = {o.name for o in graph.output}
        for name in padded:
            if name in outputs:
                return None
            if any(id(node) not in seen for node in users.get(name, [])):
                return None
        return inner, readers

    def replace_constant(node: Any, index: int, value: npt.NDArray[Any], suffix: str) -> None:
        name = f"{node.name or node.output[0]}/{suffix}"
        added.append(numpy_helper.from_array(value.astype(np.float32), name))
        node.input[index] = name

    added: list[Any] = []
    count = 0
    for node in list(graph.node):
        kernel = weights(node, 1) if node.op_type == "Conv" else None
        if kernel is None or group(node) != 1 or kernel.shape[0] % block == 0:
            continue
        channels = kernel.shape[0]
        found = chain(node, channels)
        if found is None or not found[1]:
            continue
        extra = block - channels % block
        for conv in [node, *(n for n in found[0] if n.op_type == "Conv")]:
            w = weights(conv, 1)
            replace_constant(conv, 1, np.pad(w, [(0, extra)] + [(0, 0)] * (w.ndim - 1)), "w16")
            if (bias := weights(conv, 2)) is not None:
                replace_constant(conv, 2, np.pad(bias, (0, extra)), "b16")
            if conv is not node:
                for attribute in conv.attribute:
                    if attribute.name == "group":
                        attribute.i = channels + extra
        for reader in found[1]:
            w = weights(reader, 1)
            widths = [(0, 0), (0, extra)] + [(0, 0)] * (w.ndim - 2)
            replace_constant(reader, 1, np.pad(w, widths), "w16")
        count += 1
    if count:
        graph.initializer.extend(added)
        _drop_unused_initializers(graph)
    return count


def layer_norms_fused(graph: Any) -> int:
    """Replace each layer norm that tf2onnx spelt out from TensorFlow's batchnorm ops
    (ReduceMean, Sub, Mul, ReduceMean, Add ε, Sqrt, Reciprocal, Mul γ, Mul, Neg, Mul, Add:
    ``x·g - mean·g`` with ``g = γ / sqrt(var + ε)``) by one ``LayerNormalization`` over the
    same axis (moved last by a Transpose when it is not); returns how many.

    Why: ONNX Runtime's fusion only knows other spellings, so the blendshape model ran its 8
    layer norms as ~100 small kernels (`faced bench pipeline --backend onnxruntime` shows
    the difference). Same ε and γ, no β (there was none)."""
    from onnx import helper, numpy_helper  # noqa: PLC0415

    constants = {t.name: t for t in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):  # x·x reads x once
            users.setdefault(name, []).append(node)

    def attr(node: Any, name: str) -> Any:
        found = [helper.get_attribute_value(a) for a in node.attribute if a.name == name]
        return found[0] if found else None

    def one(name: str, op: str, inputs: Sequence[str] | None = None, axes: Any = None) -> Any:
        """The one reader of ``name`` that is an ``op`` (with exactly ``inputs``, in any
        order, when given; ``""`` stands for any constant); LookupError otherwise."""

        def fits(node: Any) -> bool:
            if node.op_type != op or (axes is not None and attr(node, "axes") != axes):
                return False
            if inputs is None:
                return True
            found = sorted("" if i in constants else i for i in node.input)
            return found == sorted(inputs)

        found = [n for n in users.get(name, []) if fits(n)]
        if len(found) != 1:
            raise LookupError(name)
        return found[0]

    def match(mean: Any) -> list[Any] | None:
        """The layer norm's nodes, ``mean`` first and its final Add last."""
        x, average = mean.input[0], mean.output[0]
        axes = attr(mean, "axes")
        try:
            neg = one(average, "Neg")
            reshapes = [n for n in users[average] if n.op_type == "Reshape"]
            centred = reshapes[0].output[0] if len(reshapes) == 1 else average
            sub = one(centred, "Sub", [x, centred])
            if list(sub.input) != [x, centred]:
                return None
            square = one(sub.output[0], "Mul", [sub.output[0], sub.output[0]])
            var = one(square.output[0], "ReduceMean", axes=axes)
            plus = one(var.output[0], "Add", [var.output[0], ""])
            root = one(plus.output[0], "Sqrt")
            inverse = one(root.output[0], "Reciprocal")
            gain = one(inverse.output[0], "Mul", [inverse.output[0], ""])
            scaled = one(gain.output[0], "Mul", [x, gain.output[0]])
            shift = one(gain.output[0], "Mul", [neg.output[0], gain.output[0]])
            out = one(scaled.output[0], "Add", [scaled.output[0], shift.output[0]])
        except LookupError:
            return None
        head = [mean, neg, *reshapes[:1], sub, square, var]
        return [*head, plus, root, inverse, gain, scaled, shift, out]

    replace: dict[int, list[Any]] = {}
    drop: set[int] = set()
    added: list[Any] = []
    for mean in graph.node:
        axes = attr(mean, "axes") if mean.op_type == "ReduceMean" else None
        if axes is None or len(axes) != 1 or attr(mean, "keepdims") == 0:
            continue
        pattern = match(mean)
        if pattern is None:
            continue
        x, plus, gain, out = mean.input[0], pattern[-7], pattern[-4], pattern[-1]
        (epsilon,) = (numpy_helper.to_array(constants[i]) for i in plus.input if i in constants)
        (gamma,) = (numpy_helper.to_array(constants[i]) for i in gain.input if i in constants)
        gamma = gamma.astype(np.float32)
        axis = axes[0] % gamma.ndim if gamma.ndim else -1
        if epsilon.size != 1 or gamma.ndim < 2 or gamma.size != gamma.shape[axis]:
            continue
        inside = {id(n) for n in pattern}
        # Every intermediate must feed only the pattern, or removing it would break a reader.
        if any(
            id(reader) not in inside
            for node in pattern[:-1]
            for name in node.output
            for reader in users.get(name, [])
        ):
            continue
        stem = out.name or f"layer_norm{len(replace)}"
        rank = gamma.ndim
        order = [i for i in range(rank) if i != axis] + [axis]
        back = [order.index(i) for i in range(rank)]
        added.append(numpy_helper.from_array(gamma.reshape(-1), f"{stem}/gamma"))
        nodes = [
            helper.make_node(
                "LayerNormalization",
                [f"{stem}/last" if axis != rank - 1 else x, f"{stem}/gamma"],
                [f"{stem}/normed" if axis != rank - 1 else out.output[0]],
                name=f"{stem}/layer_norm",
                axis=-1,
                epsilon=float(epsilon.reshape(-1)[0]),
            )
        ]
        if axis != rank - 1:
            nodes.insert(
                0,
                helper.make_node(
                    "Transpose", [x], [f"{stem}/last"], name=f"{stem}/last", perm=order
                ),
            )
            nodes.append(
                helper.make_node(
                    "Transpose",
                    [f"{stem}/normed"],
                    list(out.output),
                    name=f"{stem}/back",
                    perm=back,
                )
            )
        replace[id(out)] = nodes
        drop |= inside
    if not replace:
        return 0
    kept = []
    for node in graph.node:
        if id(node) in replace:
            kept += replace[id(node)]
        elif id(node) not in drop:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(added)
    _drop_unused_initializers(graph)
    return len(replace)


def _drop_unused_initializers(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    copies = [type(t)() for t in kept]
    for copy, tensor in zip(copies, kept, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
