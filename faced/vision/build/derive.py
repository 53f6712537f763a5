"""The order of `faced models build`: per bundle model, int8 LiteRT, ONNX fp32 and int8
ONNX, each checked on held-out inputs before it is kept.

Owns ``build`` (nothing when the record is up to date; else calibration, then every target)
and the rule that the first recipe within the limits is kept; when none is, the file is
recorded as not built and that model runs in float on the int8 path.
Does not own any step (spec, calibration, litert, onnx_export, checks, record) or the
command line (faced.commands.models).
Why: the steps are independent tools; the order and the keep-or-refuse rule are the build.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faced.vision import variants
from faced.vision.build.calibration import (
    CALIBRATION_PACKAGE,
    CALIBRATION_PHOTOS,
    HOLDOUT_EVERY,
    calibration_inputs,
    calibration_photos,
)
from faced.vision.build.checks import LANDMARK_SCORES_LIMIT, LIMITS, Check, check
from faced.vision.build.litert import float32_model, litert_int8, litert_method, litert_recipes
from faced.vision.build.onnx_export import ONNX_RECIPES, onnx_fp32, onnx_int8
from faced.vision.build.record import Built, input_hash, up_to_date
from faced.vision.build.spec import BUILD_COMMAND, TARGETS, BuildError, Target, tool_versions
from faced.vision.models import ModelStore
from faced.vision.runtime import InferenceModel, LiteRtModel, OnnxRuntimeModel


def _load(data: bytes, name: str, onnx: bool) -> InferenceModel:
    if onnx:
        return OnnxRuntimeModel(data, threads=1, name=name, provider="cpu")
    return LiteRtModel(data, threads=1, name=name)


def _quantized(
    target: Target,
    *,
    reference: InferenceModel,
    holdout: list[npt.NDArray[np.float32]],
    recipes: Sequence[tuple[str, str]],
    make: Callable[[str], bytes],
    onnx: bool,
    say: Callable[[str], None],
) -> tuple[bytes, str, str, Check] | tuple[None, str, str, Check]:
    """(model, recipe, description, check) of the first recipe within LIMITS; model None
    when none is (the last one's check says by how much)."""
    limit = LIMITS[target.role]
    result = None
    for name, description in recipes:
        data = make(name)
        result = check(target.role, reference, _load(data, target.source, onnx), holdout)
        if result.within(limit):
            return data, name, description, result
        scores = LANDMARK_SCORES_LIMIT
        say(
            f"  {target.source}: {description}: {result.describe()} exceeds mean "
            f"{limit.mean}, max {limit.max}"
            + (f" ({scores.unit}: {scores.mean}, {scores.max})" if result.scores else "")
        )
    assert result is not None
    return None, "", "no int8 recipe within the accuracy limits", result


def build(
    store: ModelStore,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
    cache_dir: Path | None = None,
    only: Sequence[str] = (),
) -> list[Built] | None:
    """Build every derived model (in memory; ``write`` stores them); None when everything
    is already up to date. ``only``: the bundle files (``TARGETS``' sources) whose derived
    models to build, every one when empty; the others are not built at all."""
    unknown = sorted(set(only) - {target.source for target in TARGETS})
    if unknown:
        raise BuildError(f"not a bundle model the build derives from: {', '.join(unknown)}")
    versions = tool_versions()
    digest = input_hash(store, versions)
    if not force and up_to_date(store, digest):
        return None
    for target in TARGETS:
        store.read(target.source)  # verified sources only (ModelError names the fix)
    say(f"calibration: {CALIBRATION_PACKAGE} test photos ({len(CALIBRATION_PHOTOS)}), varied")
    photos = calibration_photos(cache_dir)
    recorded = calibration_inputs(store, photos)
    tool = {name: f"{name}=={versions[name]}" for name in versions}
    built: list[Built] = []
    for target in TARGETS:
        if only and target.source not in only:
            continue
        built += _build_target(target, store, recorded[target.source], tool, say)
    return built


def _build_target(
    target: Target,
    store: ModelStore,
    samples: list[npt.NDArray[np.float32]],
    tool: dict[str, str],
    say: Callable[[str], None],
) -> list[Built]:
    holdout = samples[::HOLDOUT_EVERY]
    calibrate = [x for i, x in enumerate(samples) if i % HOLDOUT_EVERY]
    if not calibrate or not holdout:
        raise BuildError(f"{target.source}: no calibration inputs were recorded")
    say(f"{target.source}: {len(calibrate)} calibration inputs, {len(holdout)} held out")
    fp32 = float32_model(store.read(target.source))
    reference = LiteRtModel(fp32, threads=1, name=target.source)
    stem = target.source.removesuffix(".tflite")
    out: list[Built] = []

    def keep(
        backend: str,
        precision: str,
        *,
        data: bytes,
        method: str,
        tools: tuple[str, ...],
        result: Check,
        detail: str,
    ) -> None:
        out.append(
            Built(
                name=variants.variant_name(target.source, backend, precision),
                source=target.source,
                backend=backend,
                precision=precision,
                data=data,
                method=method,
                tools=", ".join(tool[n] for n in tools),
                command=BUILD_COMMAND,
                check=result.describe(),
            )
        )
        say(f"  {out[-1].name}: {detail}{result.describe()}")

    data, recipe_name, description, result = _quantized(
        target,
        reference=reference,
        holdout=holdout,
        recipes=litert_recipes(target.role),
        make=functools.partial(litert_int8, fp32, calibrate),
        onnx=False,
        say=say,
    )
    how = litert_method(recipe_name) if recipe_name else "ai-edge-quantizer"
    keep(
        "litert",
        "int8",
        data=data or b"",
        method=f"float16 weights folded to float32, then {how}: {description}",
        tools=("ai-edge-quantizer", "ai-edge-litert", "numpy"),
        result=result,
        detail=f"{description}; ",
    )

    onnx_data, shown, rewrites = onnx_fp32(fp32)
    result = check(target.role, reference, _load(onnx_data, stem + ".onnx", True), holdout)
    keep(
        "onnxruntime",
        "fp32",
        data=onnx_data,
        method="float16 weights folded to float32, then "
        + " ".join(shown)
        + " (batch fixed to 1 with onnx.tools.update_model_dims"
        + "".join(f"; {r}" for r in rewrites)
        + ")",
        tools=("tf2onnx", "tensorflow-cpu", "onnx"),
        result=result,
        detail="",
    )

    data, recipe_name, description, result = _quantized(
        target,
        reference=_load(onnx_data, stem + ".onnx", True),
        holdout=holdout,
        recipes=ONNX_RECIPES,
        make=functools.partial(onnx_int8, onnx_data, calibrate),
        onnx=True,
        say=say,
    )
    how = {
        "static": "quant_pre_process + quantize_static (QDQ, per-channel, MinMax)",
        "dynamic": "quant_pre_process + quantize_dynamic",
    }.get(recipe_name, "")
    keep(
        "onnxruntime",
        "int8",
        data=data or b"",
        method=f"onnxruntime.quantization{' ' + how if how else ''} of {stem}.onnx: {description}",
        tools=("onnxruntime", "onnx", "numpy"),
        result=result,
        detail=f"{description}; ",
    )
    return out
