"""Jobs kept, paged, cancelled and refused: retention, DELETE, the list's pages, bad options.

The real app on loopback, real models, a real SQLite database in a temp state directory,
clips written from a test photograph. Retention is checked across a restart: the first
daemon makes three takes, the database is aged by hand where a week would be needed (one
job's ``finished`` set 8 days back, as a clock would have done), and the second daemon's
start-up sweep applies ``keep_days`` and ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.vision.synthetic import render_frame, write_clip
from tests import data
from tests.helpers import job_finished, job_of, until, write_face_then_nobody

pytestmark = pytest.mark.slow

FACE_PHOTO = "tongue.jpg"
AVI = {"Content-Type": "video/x-msvideo"}
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    photo = data.load_rgb(FACE_PHOTO)
    directory = tmp_path_factory.mktemp("clips")
    short = write_clip(photo, directory / "short.avi", 10, frame_size=(160, 120))
    # Seconds of work (it is cancelled early): one still frame, cheap to write.
    face = render_frame(photo, 0)
    long = write_face_then_nobody(directory / "long.avi", face, 900, 0)
    return {"short": short.read_bytes(), "long": long.read_bytes()}


def _config(state: Path, **jobs: Any) -> dict[str, Any]:
    return {"server": {"state_dir": str(state)}, "jobs": jobs}


async def _names(directory: Path) -> list[str]:
    def names() -> list[str]:
        return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []

    return await asyncio.to_thread(names)


async def _upload(client: Any, body: bytes, query: str = "") -> str:
    response = await client.post(f"/api/v1/jobs{query}", data=io.BytesIO(body), headers=AVI)
    assert response.status == 202, await response.text()
    return str((await response.json())["jobs"][0]["job_id"])


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


def _age(database: Path, job_id: str, days: float) -> None:
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE jobs SET finished = ? WHERE id = ?",
            (int(time.time() * 1000 - days * DAY_MS), job_id),
        )


async def test_retention_keep_days_then_max_bytes_oldest_first_and_the_pages(
    faced_client, clips, tmp_path
) -> None:
    state = tmp_path / "state"
    files = state / "jobs"
    client = await faced_client(**_config(state))
    ids = []
    for label in ("old", "older-than-c", "newest"):
        job_id = await _upload(client, clips["short"], f"?label={label}")
        assert (await job_finished(client, job_id))["status"] == "done"
        ids.append(job_id)
    old, middle, newest = ids

    # Pages, newest first.
    page = await (await client.get("/api/v1/jobs?limit=2")).json()
    assert [j["id"] for j in page["jobs"]] == [newest, middle]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    page = await (await client.get("/api/v1/jobs?limit=2&offset=2")).json()
    assert [j["id"] for j in page["jobs"]] == [old] and page["total"] == 3
    page = await (await client.get("/api/v1/jobs?offset=50")).json()
    assert page["jobs"] == [] and page["total"] == 3
    for query, field in (("limit=101", "limit"), ("offset=-1", "offset"), ("limit=x", "limit")):
        refused = await client.get(f"/api/v1/jobs?{query}")
        assert refused.status == 400 and field in (await refused.json())["error"], query
    await client.close()

    await asyncio.to_thread(_age, state / "jobs.sqlite3", old, 8)  # a week and a day ago
    sizes = {i: await asyncio.to_thread(_size, files / i) for i in ids}
    # Room for the newest job and half of the one before: that one goes (oldest first).
    max_bytes = sizes[newest] + sizes[middle] // 2
    client = await faced_client(**_config(state, keep_days=7, max_bytes=max_bytes))

    async def swept() -> bool:
        return await _names(files) == [newest]

    await until(swept, 10, what="the start-up sweep")
    assert (await client.get(f"/api/v1/job/{old}")).status == 404  # keep_days
    assert (await client.get(f"/api/v1/job/{middle}")).status == 404  # max_bytes
    kept = await job_of(client, newest)  # within both: kept, its files served
    assert kept["status"] == "done"
    assert (await client.get(kept["result"]["csv_url"])).status == 200
    page = await (await client.get("/api/v1/jobs")).json()
    assert [j["id"] for j in page["jobs"]] == [newest] and page["total"] == 1


async def test_delete_cancels_a_running_job_and_removes_a_queued_one(
    faced_client, clips, tmp_path
) -> None:
    state = tmp_path / "state"
    files = state / "jobs"
    client = await faced_client(**_config(state))
    running = await _upload(client, clips["long"])
    queued = await _upload(client, clips["short"])

    async def processing() -> bool:
        job = await job_of(client, running)
        return job["status"] == "processing" and job["progress"] > 0

    await until(processing, 60, what="the long job processing")
    assert (await job_of(client, queued))["status"] == "pending"

    deleted = await client.delete(f"/api/v1/job/{queued}")
    assert deleted.status == 200 and await deleted.json() == {"id": queued, "deleted": True}
    assert (await client.get(f"/api/v1/job/{queued}")).status == 404
    assert queued not in await _names(files)

    deleted = await client.delete(f"/api/v1/job/{running}")
    assert deleted.status == 200 and await deleted.json() == {"id": running, "deleted": True}
    assert (await client.get(f"/api/v1/job/{running}")).status == 404

    async def files_gone() -> bool:
        return running not in await _names(files)

    # The job stops between frames; what it wrote after the delete goes too.
    await until(files_gone, 10, what="the cancelled job's files removed")

    async def idle() -> bool:
        health = await (await client.get("/health")).json()
        return health["components"]["jobs"]["running"] is False

    await until(idle, 10, what="the runner idle after the cancel")
    jobs = (await (await client.get("/health")).json())["components"]["jobs"]
    assert (jobs["done"], jobs["failed"]) == (0, 0)  # stopped, not finished
    # The runner goes on with the next take.
    after = await _upload(client, clips["short"])
    assert (await job_finished(client, after))["status"] == "done"
    assert await _names(files) == [after]
    page = await (await client.get("/api/v1/jobs")).json()
    assert [j["id"] for j in page["jobs"]] == [after]

    # Unknown ids: 404 with the id named, on every route of a job.
    unknown = "0" * 32
    for method, path in (
        ("DELETE", f"/api/v1/job/{running}"),
        ("DELETE", f"/api/v1/job/{unknown}"),
        ("GET", f"/api/v1/job/{unknown}"),
        ("GET", f"/api/v1/job/{unknown}/events"),
        ("GET", f"/api/v1/job/{unknown}/curves"),
        ("GET", f"/api/v1/job/{unknown}/csv"),
        ("GET", f"/api/v1/job/{unknown}/video"),
        ("GET", "/api/v1/job/..%2F..%2Fjobs.sqlite3"),
    ):
        response = await client.request(method, path)
        assert response.status == 404, (method, path)
        assert "no job" in (await response.json())["error"], (method, path)


async def _chunks(size: int) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): the limit is met while streaming."""
    block = b"\0" * 65536
    for _ in range(size // len(block)):
        yield block


async def test_bad_options_are_400_and_big_uploads_413_leaving_nothing(
    faced_client, clips, tmp_path
) -> None:
    state = tmp_path / "state"
    client = await faced_client(**_config(state, max_upload_bytes=256 * 1024))
    video = clips["short"]
    bad = {
        "record_s": ("0.5", "601", '"ten"', "null", "-1"),
        "fps": ("0", "-5", "241", "abc", "nan", "inf"),
        "label": ("x" * 65, "tab\there", "new\nline"),
    }
    for field, values in bad.items():
        for value in values:
            if field == "record_s":
                body = f'{{"record_s": {value}}}'.encode()
                response = await client.post(
                    "/api/v1/jobs", data=body, headers={"Content-Type": "application/json"}
                )
            else:  # the same options as a query (raw body) and as form fields (multipart)
                response = await client.post(
                    "/api/v1/jobs", params={field: value}, data=io.BytesIO(video), headers=AVI
                )
                assert response.status == 400, (field, value, await response.text())
                assert field in (await response.json())["error"], (field, value)
                form = {field: value, "video": io.BytesIO(video)}
                response = await client.post("/api/v1/jobs", data=form)
            assert response.status == 400, (field, value, await response.text())
            assert field in (await response.json())["error"], (field, value)
    missing = await client.post("/api/v1/jobs", json={"label": "no record_s"})
    assert missing.status == 400 and "record_s" in (await missing.json())["error"]
    unknown = await client.post("/api/v1/jobs", json={"record_s": 2, "sceonds": 3})
    assert unknown.status == 400 and "sceonds" in (await unknown.json())["error"]

    limit = "jobs.max_upload_bytes"
    big = 1024 * 1024
    declared = await client.post("/api/v1/jobs", data=io.BytesIO(b"\0" * big), headers=AVI)
    assert declared.status == 413 and limit in (await declared.json())["error"]
    streamed = await client.post("/api/v1/jobs", data=_chunks(big), headers=AVI)
    assert streamed.status == 413 and limit in (await streamed.json())["error"]
    form = aiohttp.MultipartWriter("form-data")
    part = form.append(_chunks(big), {"Content-Type": "video/x-msvideo"})
    part.set_content_disposition("form-data", name="video", filename="big.avi")
    multipart = await client.post("/api/v1/jobs", data=form)
    assert multipart.status == 413 and limit in (await multipart.json())["error"]
    # Nothing of the refused requests is left: no job, no file.
    assert await _names(state / "jobs") == []
    assert (await (await client.get("/api/v1/jobs")).json())["total"] == 0
