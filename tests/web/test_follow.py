"""Gaze follow seen in real Chromium: the viewer's eyes turn toward the tracked person.

The real daemon with a ``file:`` camera of a real photo on the
camera image's left, the real viewer page; the eye pixels' centroid is measured (median of
several frames, so the viewer's own saccades do not decide the result).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser
from tests.test_gaze_follow import _clip
from tests.web.test_viewer import EYE_ROWS, HEIGHT, UNIT, WIDTH, open_viewer

pytestmark = pytest.mark.slow

EYES_MEDIAN = f"""
new Promise((resolve) => {{
  const xs = [];
  const sample = () => {{
    const d = __probe.dark({EYE_ROWS[0]}, {EYE_ROWS[1]});
    if (d.count > 200) xs.push(d.cx);
    if (xs.length >= 15) {{
      xs.sort((a, b) => a - b);
      resolve(xs[7]);
    }} else {{
      setTimeout(sample, 50);
    }}
  }};
  sample();
}})
"""


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (WIDTH, HEIGHT)


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return _clip(tmp_path, "left")


async def test_the_viewers_eyes_follow_the_person(
    faced_client: Any, browser: Browser, clip: Path, tmp_path: Path
) -> None:
    client = await faced_client(
        camera={"source": f"file:{clip}"},
        follow={"mode": "off"},
        server={"state_dir": str(tmp_path / "state")},
    )
    page = await open_viewer(browser, str(client.make_url("/")))
    centred = await page.evaluate(EYES_MEDIAN)
    assert abs(centred - WIDTH / 2) < 0.01 * UNIT, centred

    reply = await client.put("/api/follow", json={"mode": "follow"})
    assert reply.status == 200
    await page.wait_for(
        "window.faced.animator.target.lookAt.x > 0.3", seconds=20, what="lookAt from the camera"
    )
    # The person is on the camera's left: the eyes turn to the screen's right.
    followed = centred
    for _ in range(20):
        followed = await page.evaluate(EYES_MEDIAN)
        if followed > centred + 0.01 * UNIT:
            break
    assert followed > centred + 0.01 * UNIT, (centred, followed)
    await page.screenshot("viewer-follow-person-on-the-left")
    assert page.errors == []
