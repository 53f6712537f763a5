"""`faced models build`: derive int8 LiteRT and ONNX fp32/int8 models from the float bundle.

Owns nothing itself: it names the build's parts and re-exports them for the command line
(faced.commands.models) and the tests. Build-time only: the tools (ai-edge-quantizer,
tf2onnx with TensorFlow, onnx, onnxruntime.quantization) come from the ``build`` extra and
are imported lazily where used; nothing at run time needs them. Per bundle model:

1. fp16 -> fp32 and a signature (litert).
2. Calibration inputs: pinned photographs, varied, recorded through the float pipeline;
   every 5th held out (calibration).
3. int8 LiteRT: ai-edge-quantizer recipes, fastest first; the first whose held-out check
   stays within ``LIMITS`` (checks) is kept, else the file is recorded as not built (derive).
4. ONNX fp32: tf2onnx, batch fixed to 1, names canonicalised (onnx_export), graph rewrites
   for ONNX Runtime's CPU kernels (onnx_rewrites).
5. ONNX int8: onnxruntime.quantization static QDQ, then dynamic, same inputs, check and rule.

Outputs land next to the models; ``models/derived.toml`` records each file (record). Cached
by input hash: a build whose inputs match the record and whose files verify does nothing.
The targets, recipe version and tools are declared in ``spec``.
"""

from faced.vision.build.calibration import (
    ANGLES,
    CALIBRATION_PACKAGE,
    CALIBRATION_PHOTOS,
    CALIBRATION_SDIST,
    CALIBRATION_SDIST_SHA256,
    GAINS,
    HOLDOUT_EVERY,
    Photo,
    RecordingModel,
    RecordingRuntime,
    calibration_inputs,
    calibration_photos,
)
from faced.vision.build.checks import (
    LANDMARK_SCORES_LIMIT,
    LIMITS,
    Check,
    Limit,
    check,
    errors,
    landmark_score_errors,
)
from faced.vision.build.derive import build
from faced.vision.build.litert import (
    LITERT_MIXED,
    LITERT_RECIPES,
    MixedRecipe,
    float32_model,
    litert_int8,
    litert_method,
    litert_recipe,
    litert_recipes,
)
from faced.vision.build.onnx_export import ONNX_RECIPES, onnx_fp32, onnx_int8
from faced.vision.build.onnx_rewrites import (
    NCHWC_BLOCK,
    channels_padded,
    layer_norms_fused,
    prelu_as_convs,
)
from faced.vision.build.record import (
    Built,
    input_hash,
    render_record,
    up_to_date,
    write,
    write_files,
)
from faced.vision.build.spec import (
    BUILD_COMMAND,
    BUILD_HINT,
    BUILD_TOOLS,
    RECIPE_VERSION,
    TARGETS,
    BuildError,
    Target,
    tool_versions,
)

__all__ = [
    "ANGLES",
    "BUILD_COMMAND",
    "BUILD_HINT",
    "BUILD_TOOLS",
    "CALIBRATION_PACKAGE",
    "CALIBRATION_PHOTOS",
    "CALIBRATION_SDIST",
    "CALIBRATION_SDIST_SHA256",
    "GAINS",
    "HOLDOUT_EVERY",
    "LANDMARK_SCORES_LIMIT",
    "LIMITS",
    "LITERT_MIXED",
    "LITERT_RECIPES",
    "NCHWC_BLOCK",
    "ONNX_RECIPES",
    "RECIPE_VERSION",
    "TARGETS",
    "BuildError",
    "Built",
    "Check",
    "Limit",
    "MixedRecipe",
    "Photo",
    "RecordingModel",
    "RecordingRuntime",
    "Target",
    "build",
    "calibration_inputs",
    "calibration_photos",
    "channels_padded",
    "check",
    "errors",
    "float32_model",
    "input_hash",
    "landmark_score_errors",
    "layer_norms_fused",
    "litert_int8",
    "litert_method",
    "litert_recipe",
    "litert_recipes",
    "onnx_fp32",
    "onnx_int8",
    "prelu_as_convs",
    "render_record",
    "tool_versions",
    "up_to_date",
    "write",
    "write_files",
]
