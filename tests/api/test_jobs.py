"""Jobs through the real daemon: uploads and camera takes in, curves JSON and CSV out.

Real app on loopback, real models, a real SQLite database in a temp state directory, clips
written from a test photograph (faced.vision.synthetic). The CSV is read back with a
re-implementation of Epic's importer rules and of a positional reader (faceit), and the
curves are compared with `faced analyze --jsonl` on the same clip.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.jobs import livelink
from faced.vision.blendshapes import ARKIT_NAMES
from faced.vision.synthetic import write_clip
from tests import data
from tests.api.livelink_reader import read_like_faceit, read_like_unreal
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

FACE_PHOTO = "tongue.jpg"
KEY = "k3y"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(data.load_rgb(FACE_PHOTO), tmp_path_factory.mktemp("clips") / "t.avi", 45)


def _config(tmp_path: Path, **jobs: Any) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}, "jobs": jobs}


async def _names(directory: Path) -> list[str]:
    def names() -> list[str]:
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    return await asyncio.to_thread(names)


async def _done(client: Any, job_id: str, seconds: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            response = await client.get(f"/api/v1/job/{job_id}")
            assert response.status == 200
            job = await response.json()
            if job["status"] in ("done", "failed"):
                return job
            await asyncio.sleep(0.1)


async def _upload(client: Any, clip: Path, **fields: str) -> str:
    body = await asyncio.to_thread(clip.read_bytes)
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("video", io.BytesIO(body), filename="take.avi", content_type="video/x-msvideo")
    response = await client.post("/api/v1/jobs", data=form)
    assert response.status == 202, await response.text()
    [accepted] = (await response.json())["jobs"]
    assert accepted["status"] == "queued"
    return str(accepted["job_id"])


async def _analyze_jsonl(clip: Path) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "faced", "analyze", "--jsonl", str(clip),
        stdout=asyncio.subprocess.PIPE,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    return [json.loads(line) for line in out.splitlines()]


async def test_an_upload_becomes_curves_and_a_live_link_face_csv(
    faced_client, clip, tmp_path
) -> None:
    client = await faced_client(**_config(tmp_path))
    job_id = await _upload(client, clip, label="smile test")
    job = await _done(client, job_id)
    assert job["status"] == "done", job
    assert job["error"] is None and job["progress"] == 1
    result = job["result"]
    assert result["frames"] == 45 and result["faces_found"] >= 40
    assert result["fps"] == 30 and result["duration_s"] == pytest.approx(1.5)
    assert result["video_url"] is None  # not kept: the video is gone
    files = await _names(tmp_path / "state" / "jobs" / job_id)
    assert files == sorted(["curves.json", result["csv_name"]])
    assert result["csv_name"].startswith("smile-test_1_")

    served_curves = await client.get(result["curves_url"])
    stem = result["csv_name"].removesuffix(".csv")
    disposition = served_curves.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="{stem}.json"'  # named like the CSV
    curves = await served_curves.json()
    assert curves["fps"] == 30 and not curves["calibrated"]
    assert [f["frame"] for f in curves["frames"]] == list(range(45))
    # Computed as `faced analyze VIDEO --jsonl` computes each frame (the same code path).
    reference = await _analyze_jsonl(clip)
    assert len(reference) == 45
    for ours, theirs in zip(curves["frames"], reference, strict=True):
        assert ours["face"] == theirs["face_found"]
        if ours["face"]:
            assert ours["blendshapes"] == theirs["blendshapes"]
            assert ours["head"]["yaw"] == theirs["head"]["yaw"]
            assert ours["eyes"] == theirs["eyes"]
            assert set(ours["blendshapes"]) == set(ARKIT_NAMES)

    response = await client.get(result["csv_url"])
    assert response.status == 200 and response.content_type == "text/csv"
    assert result["csv_name"] in response.headers["Content-Disposition"]
    text = await response.text()
    unreal = read_like_unreal(text, result["csv_name"])
    assert unreal.fps == 60  # frame numbers pass 30 on the 60 base: Unreal guesses 60
    times = [f["t"] for f in curves["frames"]]
    assert unreal.times == pytest.approx(times, abs=1e-3)
    faceit = read_like_faceit(text)
    first_face = next(f for f in curves["frames"] if f["face"])
    row = faceit[first_face["frame"]]
    for column, name in zip(livelink.BLENDSHAPE_COLUMNS, livelink.ARKIT_OF_COLUMN, strict=True):
        assert row.shapes[column] == pytest.approx(first_face["blendshapes"][name], abs=1e-6)
    assert row.head[0] == pytest.approx(math.radians(first_face["head"]["yaw"]), abs=1e-6)


async def test_raw_body_events_fps_and_keep_video(faced_client, clip, tmp_path) -> None:
    client = await faced_client(**_config(tmp_path))
    body = await asyncio.to_thread(clip.read_bytes)
    response = await client.post(
        "/api/v1/jobs?keep_video=1&fps=10&label=raw",
        data=io.BytesIO(body),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status == 202
    job_id = (await response.json())["jobs"][0]["job_id"]
    events = []
    async with client.get(f"/api/v1/job/{job_id}/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        async for line in stream.content:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "done"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    result = events[-1]["result"]
    assert result["fps"] == 10 and result["frames"] == 15  # 1.5 s at 10 fps
    kept = await client.get(result["video_url"])
    assert kept.status == 200 and await kept.read() == body
    # application/octet-stream says no kind of video: the name has no extension.
    stem = result["csv_name"].removesuffix(".csv")
    assert kept.headers["Content-Disposition"] == f'attachment; filename="{stem}"'

    listed = await (await client.get("/api/v1/jobs?limit=1")).json()
    assert listed["total"] == 1 and listed["jobs"][0]["id"] == job_id
    deleted = await client.delete(f"/api/v1/job/{job_id}")
    assert (await deleted.json()) == {"id": job_id, "deleted": True}
    assert (await client.get(f"/api/v1/job/{job_id}")).status == 404
    assert job_id not in await _names(tmp_path / "state" / "jobs")


async def test_a_kept_video_is_named_for_its_type(faced_client, clip, tmp_path) -> None:
    """The kept video's download name: the CSV's stem and the extension of the upload's
    file name, else of its Content-Type (a raw body, a part without a file name)."""
    client = await faced_client(**_config(tmp_path))
    body = await asyncio.to_thread(clip.read_bytes)

    async def raw(content_type: str) -> str:
        response = await client.post(
            "/api/v1/jobs?keep_video=1",
            data=io.BytesIO(body),
            headers={"Content-Type": content_type},
        )
        assert response.status == 202, await response.text()
        return str((await response.json())["jobs"][0]["job_id"])

    async def part(filename: str | None, content_type: str) -> str:
        form = aiohttp.FormData()
        form.add_field("keep_video", "true")
        form.add_field("video", io.BytesIO(body), filename=filename, content_type=content_type)
        response = await client.post("/api/v1/jobs", data=form)
        assert response.status == 202, await response.text()
        return str((await response.json())["jobs"][0]["job_id"])

    cases = [
        (await raw("video/x-msvideo"), ".avi", "video/x-msvideo"),
        (await raw("video/quicktime"), ".mov", "video/quicktime"),
        (await raw("video/x-something-new"), "", "application/octet-stream"),
        (await part("take.MP4", "application/octet-stream"), ".mp4", "video/mp4"),
        (await part(None, "video/webm"), ".webm", "video/webm"),
    ]
    for job_id, suffix, served_type in cases:
        job = await _done(client, job_id)
        assert job["result"] is not None, job  # every one is the same AVI inside
        stem = job["result"]["csv_name"].removesuffix(".csv")
        kept = await client.get(job["result"]["video_url"])
        assert kept.status == 200 and await kept.read() == body
        assert kept.headers["Content-Disposition"] == f'attachment; filename="{stem}{suffix}"'
        assert kept.content_type == served_type


async def test_bad_input_is_refused_or_fails_the_job_never_a_5xx(
    faced_client, clip, tmp_path
) -> None:
    client = await faced_client(**_config(tmp_path, max_upload_bytes=100_000))
    junk = await client.post(
        "/api/v1/jobs", data=b"not a video" * 100, headers={"Content-Type": "video/mp4"}
    )
    assert junk.status == 202
    job = await _done(client, (await junk.json())["jobs"][0]["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "the file cannot be opened as a video"
    assert (await client.get(f"/api/v1/job/{job['id']}/csv")).status == 409

    big = await client.post(
        "/api/v1/jobs", data=io.BytesIO(b"x" * 200_000), headers={"Content-Type": "video/mp4"}
    )
    assert big.status == 413 and "jobs.max_upload_bytes" in (await big.json())["error"]
    for body, content_type, status, words in (
        (b"x", "text/html", 415, "unsupported Content-Type"),
        (b'{"record_s": 0}', "application/json", 400, "record_s"),
        (b'{"record_s": 5}', "application/json", 503, "no camera"),
        (b'{"record_s": 5, "calibrated": true}', "application/json", 409, "calibration"),
    ):
        response = await client.post(
            "/api/v1/jobs", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == status, (content_type, await response.text())
        assert words in (await response.json())["error"]
    bad_fps = await client.post(
        "/api/v1/jobs?fps=0", data=b"x", headers={"Content-Type": "video/mp4"}
    )
    assert bad_fps.status == 400 and "fps" in (await bad_fps.json())["error"]
    assert (await client.get("/api/v1/job/nope")).status == 404
    assert (await client.get("/api/v1/jobs?limit=0")).status == 400
    form = aiohttp.FormData()
    form.add_field("label", "no video")
    form.add_field("notes", io.BytesIO(b"a file, not a video"), filename="notes.txt")
    missing = await client.post("/api/v1/jobs", data=form)
    assert missing.status == 400 and "video" in (await missing.json())["error"]
    # Nothing was left behind by the refused uploads.
    assert len(await _names(tmp_path / "state" / "jobs")) == 1


async def test_a_camera_take_is_recorded_then_processed_and_the_queue_is_bounded(
    faced_client, clip, tmp_path
) -> None:
    config = _config(tmp_path, max_queued=1)
    config["camera"] = {"source": f"file:{clip}", "tracking": False}
    client = await faced_client(**config)
    response = await client.post("/api/v1/jobs", json={"record_s": 1, "label": "cam"})
    assert response.status == 202
    job_id = (await response.json())["jobs"][0]["job_id"]
    job = await (await client.get(f"/api/v1/job/{job_id}")).json()
    assert job["source"] == "camera" and job["recording"] and job["status"] == "pending"
    full = await client.post("/api/v1/jobs", json={"record_s": 1})
    assert full.status == 429 and "jobs.max_queued" in (await full.json())["error"]
    job = await _done(client, job_id)
    assert job["status"] == "done", job
    assert 20 <= job["result"]["frames"] <= 40  # one second at the camera's 30 fps
    assert job["result"]["faces_found"] > 0
    # The recorded video was deleted after processing (keep_video was false).
    directory = tmp_path / "state" / "jobs" / job_id
    assert not any(name.startswith("video") for name in await _names(directory))
    csv = await (await client.get(job["result"]["csv_url"])).text()
    read_like_unreal(csv, job["result"]["csv_name"])  # well-formed, timecode of day


async def test_jobs_are_private(faced_client, clip, tmp_path) -> None:
    config = _config(tmp_path)
    config["auth"] = {"api_key": KEY}
    client = await faced_client(**config)
    assert (await client.get("/api/v1/jobs")).status == 401
    ok = await client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status == 200 and (await ok.json())["jobs"] == []
