"""Wide shots in IMAGE mode: a small face in a large photo, found by the tiled search.

A real photograph is scaled so its face is ~110 px wide and pasted into a 1920x1080 grey
canvas (faced.bench.wide_shots.wide_shot), written as a PNG and analysed as a photo by
`faced analyze` and by POST /v1/analyze on the real daemon. With ``vision.detector =
auto`` the face is found; short range alone, or full range on the whole frame, misses it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from faced.bench.wide_shots import FACE_PX, wide_shot
from faced.cli import main
from faced.vision.detector import tiles
from faced.vision.pipeline import FacePipeline
from faced.vision.tracker import TILE_OVERLAP, TILE_SIZE, WHOLE_FRAME_SMALLEST, image_tiles
from tests import data

WIDTH, HEIGHT = 1920, 1080
PHOTO = "tongue.jpg"
# Centres: the middle, a corner, and across the right edge of the first tile column.
PLACES = {"middle": (0.5, 0.5), "corner": (0.04, 0.93), "seam": (0.23, 0.3)}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    photo = data.load_rgb(PHOTO)
    found = FacePipeline.load().analyze(photo)
    assert found.bbox is not None
    directory = tmp_path_factory.mktemp("wide")
    paths = {}
    for name, at in PLACES.items():
        canvas = wide_shot(photo, found.bbox[2] * photo.shape[1], size=(WIDTH, HEIGHT), at=at)
        path = paths[name] = directory / f"{name}.png"
        cv2.imwrite(str(path), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return paths


def _face_px(result: dict[str, Any]) -> float:
    return float(result["bbox"][2]) * WIDTH


def test_image_tiles_overlap_by_more_than_the_whole_frame_misses() -> None:
    assert image_tiles(640, 480) == [(x, y, TILE_SIZE) for x, y in tiles(640, 480, 256, 64)]
    found = image_tiles(WIDTH, HEIGHT)
    overlap = WHOLE_FRAME_SMALLEST * WIDTH
    assert overlap > TILE_OVERLAP and len(found) < len(tiles(WIDTH, HEIGHT, 256, 64))
    # Any face up to the overlap lies wholly inside one tile, wherever it is.
    side = int(overlap)
    for left in range(0, WIDTH - side, 37):
        for top in range(0, HEIGHT - side, 37):
            assert any(
                x <= left and y <= top and left + side <= x + s and top + side <= y + s
                for x, y, s in found
            ), (left, top)


def test_faced_analyze_finds_the_small_face_with_auto_only(
    shots: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [str(shots[name]) for name in PLACES]
    assert main(["analyze", "--jsonl", "--detector", "auto", *paths]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(results) == len(PLACES)
    for result in results:
        assert result["face_found"] is True, result["source"]
        assert _face_px(result) == pytest.approx(FACE_PX, rel=0.25), result["source"]
        assert len(result["blendshapes"]) == 52
    for detector in ("short", "full"):  # the whole-frame looks alone miss it
        main(["analyze", "--jsonl", "--detector", detector, paths[0]])
        (line,) = capsys.readouterr().out.splitlines()
        assert json.loads(line)["face_found"] is False, detector


async def test_v1_analyze_finds_the_small_face(faced_client: Any, shots: dict[str, Path]) -> None:
    body = await asyncio.to_thread(shots["middle"].read_bytes)
    headers = {"Content-Type": "image/png"}
    client = await faced_client(vision={"detector": "auto"})
    response = await client.post("/v1/analyze", data=body, headers=headers)
    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["face_found"] is True
    assert _face_px(result) == pytest.approx(FACE_PX, rel=0.25)
    left = result["bbox"][0] * WIDTH + _face_px(result) / 2
    assert left == pytest.approx(WIDTH / 2, abs=FACE_PX)

    client = await faced_client()  # vision.detector = short, the default
    response = await client.post("/v1/analyze", data=body, headers=headers)
    assert (await response.json())["face_found"] is False


def test_nobody_in_a_wide_photo_is_nobody() -> None:
    pipeline = FacePipeline.load(detector="auto")
    empty = wide_shot(data.load_rgb(data.NO_FACE_PHOTO), 400.0, size=(WIDTH, HEIGHT))
    assert pipeline.analyze(empty).face_found is False
