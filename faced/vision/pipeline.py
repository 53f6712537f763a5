"""The face pipeline: image in, ``Analysis`` out (MediaPipe Face Landmarker v2, reimplemented).

Owns the two modes over the stages (faced.vision.stages): ``FacePipeline.analyze`` is
MediaPipe's IMAGE mode (detection on every call); ``tracker()`` gives a per-stream
``Tracker`` (VIDEO mode: tracking, smoothing; faced.vision.tracker). A pipeline owns one set
of interpreters: use one pipeline per worker thread for parallelism; calls on one pipeline,
its trackers included, serialise on its lock.
Does not own the models' loading or the steps (faced.vision.stages), nor a stream's state.
Why: one entry point whose two modes give MediaPipe's results, for the API, the live camera
and `faced analyze` alike.
``detector`` (vision.detector) picks the BlazeFace model: short (MediaPipe's default, faces
within ~2 m), full (full range, faces up to ~5 m) or auto (both loaded; short unless the face
is expected to be small: IMAGE mode falls back to full range when short range finds nobody,
trackers decide per stream; when neither finds anybody, full range searches the image's
tiles as a tracker searches a wide frame, so a small face in a large photo is found).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faced.schemas.analysis import Analysis
from faced.vision.landmarks import Roi
from faced.vision.models import ModelStore, default_model_dir
from faced.vision.runtime import Runtime
from faced.vision.stages import (
    BLENDSHAPES_FILE,
    DETECTOR_FILE,
    DETECTOR_MODES,
    FULL_RANGE_FILE,
    GEOMETRY_FILE,
    LANDMARKS_FILE,
    MAX_FACES,
    DetectorMode,
    Stages,
    StageTimes,
    model_files,
    prepare,
)
from faced.vision.tracker import Tracker, associate, image_tiles


class FacePipeline(Stages):
    """The stages in IMAGE mode (``analyze``) and the factory of VIDEO-mode trackers."""

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        threads: int = 1,
        num_faces: int = 1,
        runtime: Runtime | None = None,
        detector: DetectorMode = "short",
    ) -> FacePipeline:
        """Load and verify every model (ModelError names the file, hash and fix)."""
        directory = Path(model_dir) if model_dir else default_model_dir()
        return cls(
            ModelStore(directory),
            threads=threads,
            num_faces=num_faces,
            runtime=runtime,
            detector=detector,
        )

    def tracker(self, smoothing: bool = True) -> Tracker:
        """A new per-stream tracker (VIDEO mode); never share one across streams."""
        return Tracker(self, smoothing=smoothing)

    # -- IMAGE mode ---------------------------------------------------------------------

    def analyze(
        self,
        image: npt.NDArray[np.uint8],
        landmarks: bool = False,
        *,
        num_faces: int | None = None,
        bgr: bool = False,
        blendshapes: bool = True,
    ) -> Analysis:
        """Detect and analyze faces in one image (RGB by default; grey/RGBA accepted);
        without ``blendshapes`` the blendshape model is not run."""
        start = time.perf_counter()
        wanted = self.num_faces if num_faces is None else num_faces
        if not 1 <= wanted <= MAX_FACES:
            raise ValueError(f"num_faces must be 1..{MAX_FACES}, got {wanted}")
        # Images come in any size here, so no frame buffer is kept (a 40 MP one would pin
        # 160 MB); trackers, whose frames repeat in size, keep theirs.
        frame = prepare(image, bgr=bgr, keep_rgb=True)
        with self.lock:
            height, width = frame.shape[:2]
            times = StageTimes()
            rois = self.detect_rois(frame, wanted, times)
            if not rois and self.detector_mode == "auto":
                # One image says nothing about the expected face size: full range gets a
                # second look only when short range finds nobody (near faces cost nothing
                # extra).
                rois = self.detect_rois(frame, wanted, times, "full")
            if not rois and self.detector_mode == "auto":
                rois = self._search_tiles(frame, wanted, times)
            found = self.run_landmarks(frame, rois, times)
            faces = [
                self.describe(
                    f,
                    f.points,
                    width,
                    height,
                    with_landmarks=landmarks,
                    times=times,
                    blendshapes=blendshapes,
                )
                for f in found
            ]
        return self.result(faces, width, height, times, start, with_landmarks=landmarks)

    def _search_tiles(
        self, frame: npt.NDArray[np.uint8], wanted: int, times: StageTimes
    ) -> list[Roi]:
        """Full range over the image's tiles (faced.vision.tracker.image_tiles), as live
        tracking searches a wide frame, until ``wanted`` faces are found; a face seen by two
        overlapping tiles counts once."""
        height, width = frame.shape[:2]
        rois: list[Roi] = []
        for tile in image_tiles(width, height):
            found = self.detect_rois(frame, wanted, times, "full", tile)
            if found:
                rois = associate(rois, found, MAX_FACES)
                if len(rois) >= wanted:
                    break
        return rois[:wanted]


__all__ = [
    "BLENDSHAPES_FILE",
    "DETECTOR_FILE",
    "DETECTOR_MODES",
    "FULL_RANGE_FILE",
    "GEOMETRY_FILE",
    "LANDMARKS_FILE",
    "MAX_FACES",
    "DetectorMode",
    "FacePipeline",
    "StageTimes",
    "model_files",
    "prepare",
]
