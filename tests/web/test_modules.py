"""The viewer's modules in a real Chromium, fed hostile input: face packs of any shape
(the wider Open Face schema, wrong types, garbage) and malformed state messages. They must
never throw, and a frame must still be drawn."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser, Page

pytestmark = pytest.mark.slow


# A pack using parts of the Open Face schema faced does not draw (bodies, accessories,
# exotic shapes), written for this test.
WIDE_PACK = {
    "$type": "face",
    "meta": {"name": "Wide", "author": "test"},
    "geometry": {
        "head": {"shape": "hexagon", "width": 0.7, "height": 0.8},
        "eyes": {
            "style": "star",
            "baseWidth": 0.05,
            "pupil": {"enabled": True, "shape": "spiral", "size": 0.3},
            "eyelash": {"style": "wing"},
            "leftOverride": {"style": "heart"},
            "stateScales": {"alert": [2, "big"], "idle": [1]},
        },
        "mouth": {"style": "zigzag", "rendererByState": {"idle": "sparkle", "speaking": "fill"}},
        "brows": {"renderer": "angled", "configs": [{"a": 1}]},
        "nose": {"style": "triangle"},
        "body": {"enabled": True, "shape": "blob", "arms": {"style": "arc"}},
    },
    "palette": {"feature": "not-a-colour", "states": {"idle": "#123456", "alert": 7}},
    "accessories": [{"id": "antenna", "type": "antenna", "physics": {"stiffness": 0.5}}],
    "states": {"idle": {"mouth": "wide", "brows": [0.2, None], "lid": 9}},
    "emotionDeltas": {"happy": {"happiness": 5, "eyeScale": [1, 2, 3]}, "bogus": {}},
    "futureSection": {"anything": [1, 2, 3]},
}

HOSTILE_PACKS = [None, [], "face", 42, {}, {"geometry": None, "palette": []}, WIDE_PACK]

HOSTILE_MESSAGES = [
    None,
    [],
    "idle",
    {"state": "dancing", "emotion": 3, "intensity": "high"},
    {"lookAt": {"x": "left"}, "amplitude": None, "winkLeft": float("inf")},
    {"lookAt": [1, 2], "color": "red", "progress": "half", "textDuration": -5},
    {"emotionSecondary": "happy", "emotionBlend": 7, "intensity": -3},
    {"text": 12, "detail": {"x": 1}},
    {"state": "alert", "lookAt": {"x": 5, "y": -5}, "color": "#ABCDEF", "progress": 2},
]

SCRIPT = """
(async (packs, messages) => {
  const { normalizePack } = await import("/static/js/facepack.js");
  const { FaceAnimator } = await import("/static/js/animator.js");
  const { drawFace } = await import("/static/js/renderer.js");
  const canvas = new OffscreenCanvas(320, 240);
  const ctx = canvas.getContext("2d");
  const results = [];
  for (const doc of packs) {
    const pack = normalizePack(doc, "t");
    const animator = new FaceAnimator(pack);
    for (const message of messages) {
      animator.apply(message);
      for (let i = 0; i < 5; i++) {
        animator.update(1 / 60);
        drawFace(ctx, 320, 240, pack, animator.current, animator.target);
      }
    }
    const finite = Object.values(animator.current).every(Number.isFinite);
    const px = ctx.getImageData(2, 2, 1, 1).data;
    results.push({ name: pack.name, eyeStyle: pack.eyeStyle, head: pack.headShape,
                   finite, target: animator.target, alpha: px[3] });
  }
  return results;
})(%s, %s)
"""


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (320, 240)


@pytest.fixture
async def page(faced_client: Any, tmp_path: Path, browser: Browser) -> AsyncIterator[Page]:
    client = await faced_client(server={"state_dir": str(tmp_path)})
    yield await browser.page(str(client.make_url("/?face=default")))


async def test_hostile_packs_and_messages_never_break_the_face(page: Page) -> None:
    messages = json.dumps(HOSTILE_MESSAGES).replace("Infinity", "1e999")
    results = await page.evaluate(SCRIPT % (json.dumps(HOSTILE_PACKS), messages))
    assert len(results) == len(HOSTILE_PACKS)
    for result in results:
        assert result["finite"], result
        target = result["target"]
        # Only the well-formed parts of the messages landed, clamped to their ranges.
        assert target["state"] == "alert"
        assert target["emotion"] == "neutral"
        assert target["emotionSecondary"] == "happy"
        assert target["emotionBlend"] == 1
        assert target["intensity"] == 0
        assert target["lookAt"] == {"x": 1, "y": -1}
        assert target["color"] == "#ABCDEF"
        assert target["progress"] == 1
        assert target["textDuration"] == 500
        assert target["text"] is None
    wide = results[-1]
    assert wide["name"] == "Wide"
    assert wide["eyeStyle"] == "round"  # star eyes drawn as the closest supported style
    assert wide["head"] == "rounded"  # hexagon head likewise
    # Every pack drew its frames: the canvas starts transparent, a face is opaque.
    assert [result["alpha"] for result in results] == [255] * len(HOSTILE_PACKS)
    assert page.errors == []
