"""What `faced models build` makes and with which tools.

Owns the build's targets (the bundle models it derives from), the recipe version (part of
the input hash), the tools and their installed versions, and ``BuildError``.
Does not own any step of the build (calibration, quantization, conversion, checks, record:
a module each in this package).
Why: every step and the record name the same targets and tools; they are declared once.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Final

from faced.vision.models import ModelError

# Bump when the recipe (code below) changes what is built: it is part of the input hash.
RECIPE_VERSION: Final = "11"
BUILD_COMMAND: Final = "faced models build"
BUILD_TOOLS: Final = (
    "ai-edge-quantizer",
    "ai-edge-litert",
    "tf2onnx",
    "tensorflow-cpu",
    "onnx",
    "onnxruntime",
    "numpy",
    "opencv-python-headless",
)
# The same module from another distribution (aarch64 has no tensorflow-cpu wheel).
_ALTERNATIVES: Final = {
    "tensorflow-cpu": ("tensorflow",),
    "opencv-python-headless": ("opencv-python", "opencv-contrib-python"),
}
BUILD_HINT: Final = "install the build tools with `pip install -e '.[build]'`"


@dataclass(frozen=True, slots=True)
class Target:
    source: str
    role: str


TARGETS: Final = (
    Target("face_detector.tflite", "detector"),
    Target("face_detection_full_range.tflite", "detector"),
    Target("face_landmarks_detector.tflite", "landmarks"),
    Target("face_blendshapes.tflite", "blendshapes"),
)


class BuildError(ModelError):
    """The build cannot run or produced something unusable; says why."""


def tool_versions() -> dict[str, str]:
    """Versions of every build tool; BuildError naming the missing ones."""
    versions: dict[str, str] = {}
    missing = []
    for name in BUILD_TOOLS:
        for distribution in (name, *_ALTERNATIVES.get(name, ())):
            try:
                versions[name] = importlib.metadata.version(distribution)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            missing.append(name)
    if missing:
        raise BuildError(f"faced models build: {', '.join(missing)} not installed; {BUILD_HINT}")
    return versions
