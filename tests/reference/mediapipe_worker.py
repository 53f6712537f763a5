"""MediaPipe's Face Landmarker as a child process: frames in on stdin, raw results out on stdout.

Runs under .venv-ref's python (``make
reference``), the only venv with mediapipe, and imports nothing of faced or tests: the test
process (``tests.reference.landmarker``) starts it, sends frames and shapes the answers.

    .venv-ref/bin/python tests/reference/mediapipe_worker.py --mode image|video \\
        --num-faces N --model face_landmarker.task

Protocol, one exchange per frame: the parent writes a JSON line ``{"height", "width",
"timestamp_ms"}`` followed by height * width * 3 bytes of RGB; the worker answers one JSON
line ``{"faces": [{"landmarks": [[x, y, z], ...], "blendshapes": [[name, score], ...],
"matrix": [[...] x 4]}]}`` in MediaPipe's order, or ``{"error": "..."}``. JSON floats
round-trip exactly, so the parent sees MediaPipe's very numbers. The first line, once the
model is loaded, is ``{"ready": true}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, BinaryIO

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision


def _faces(result: Any) -> list[dict[str, Any]]:
    return [
        {
            "landmarks": [[p.x, p.y, p.z] for p in points],
            "blendshapes": [
                [category.category_name, float(category.score)]
                for category in result.face_blendshapes[index]
            ],
            "matrix": np.asarray(result.facial_transformation_matrixes[index]).tolist(),
        }
        for index, points in enumerate(result.face_landmarks)
    ]


def _answer(out: BinaryIO, document: dict[str, Any]) -> None:
    out.write(json.dumps(document).encode() + b"\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("image", "video"), required=True)
    parser.add_argument("--num-faces", type=int, required=True)
    parser.add_argument("--model", required=True, help="face_landmarker.task")
    args = parser.parse_args(argv)
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=args.model),
        running_mode=vision.RunningMode.IMAGE if args.mode == "image" else vision.RunningMode.VIDEO,
        num_faces=args.num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    source, out = sys.stdin.buffer, sys.stdout.buffer
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        _answer(out, {"ready": True})
        while header := source.readline():
            request = json.loads(header)
            height, width = request["height"], request["width"]
            pixels = source.read(height * width * 3)
            if len(pixels) != height * width * 3:
                return 1  # the parent went away mid-frame
            image = mp.Image(
                image_format=mp.ImageFormat.SRGB,
                data=np.frombuffer(pixels, np.uint8).reshape(height, width, 3).copy(),
            )
            try:
                if args.mode == "image":
                    result = landmarker.detect(image)
                else:
                    result = landmarker.detect_for_video(image, request["timestamp_ms"])
            except Exception as exc:  # the parent raises it, in the test that sent the frame
                _answer(out, {"error": f"{type(exc).__name__}: {exc}"})
                continue
            _answer(out, {"faces": _faces(result)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
