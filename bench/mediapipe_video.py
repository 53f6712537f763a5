"""MediaPipe's side of the pipeline benchmark: its Face Landmarker in VIDEO mode over a clip.

The work ``faced analyze CLIP --jsonl`` does, done the way a MediaPipe user would: decode
each frame with OpenCV, convert it to RGB, ``detect_for_video`` (detection on the first
frame or after a loss, tracking, smoothing, blendshapes, facial transformation matrix), one
JSON line per frame on stdout with the blendshapes, the matrix and yaw/pitch/roll. mediapipe
is a test/benchmark-only dependency that lives in .venv-ref (``make reference``); faced
never imports it.

    .venv-ref/bin/python bench/mediapipe_video.py CLIP --model tests/.data/face_landmarker.task
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions, vision


def euler_degrees(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in faced's documented convention, from the rotation of a pose."""
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    rotation = u @ vt
    yaw = math.atan2(rotation[0, 2], rotation[2, 2])
    pitch = math.asin(max(-1.0, min(1.0, float(rotation[1, 2]))))
    roll = math.atan2(rotation[1, 0], rotation[1, 1])
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="face_landmarker.task")
    parser.add_argument("--num-faces", type=int, default=1)
    args = parser.parse_args(argv)

    capture = cv2.VideoCapture(str(args.clip))
    if not capture.isOpened():
        print(f"error: cannot open video {args.clip}", file=sys.stderr)
        return 1
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(args.model)),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=args.num_faces,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    out = sys.stdout
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            timestamp_ms = math.floor(index * 1000.0 / fps)
            result = landmarker.detect_for_video(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), timestamp_ms
            )
            faces = []
            for blendshapes, matrix in zip(
                result.face_blendshapes, result.facial_transformation_matrixes, strict=True
            ):
                yaw, pitch, roll = euler_degrees(matrix)
                faces.append(
                    {
                        "blendshapes": {c.category_name: c.score for c in blendshapes},
                        "head": {
                            "yaw": yaw,
                            "pitch": pitch,
                            "roll": roll,
                            "matrix": matrix.tolist(),
                        },
                    }
                )
            document = {"frame": index, "face_found": bool(faces), "faces": faces}
            out.write(json.dumps(document) + "\n")
            index += 1
    capture.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
