"""Jobs' faults, with nothing lost: a full disk and ``kill -9`` of the real daemon.

The state directory is a small tmpfs filled to the last byte while an upload arrives and
while a job writes its results (tests.helpers.tiny_tmpfs, fill_disk): the upload is
refused with 507, the job ends ``failed`` with a clear error, the database and the jobs
before are intact, and jobs run again once there is room. ``kill -9`` of ``faced serve`` at
seeded random moments while uploads are accepted and processed: every job answered 202 is
still there after a restart and ends done. The figures are in docs/performance.md
("Faults").
"""

from __future__ import annotations

import asyncio
import io
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.vision.synthetic import render_frame, write_clip
from tests import data
from tests.conftest import RunFaced
from tests.helpers import fill_disk, job_finished, job_of, tiny_tmpfs, until, write_face_then_nobody

pytestmark = pytest.mark.slow

FACE_PHOTO = "tongue.jpg"
AVI = {"Content-Type": "video/x-msvideo"}
KILLS = 3


def _integrity(database: Path) -> tuple[str, list[tuple[str, str]]]:
    with sqlite3.connect(database) as db:
        (check,) = db.execute("PRAGMA integrity_check").fetchone()
        rows = db.execute("SELECT id, status FROM jobs ORDER BY seq").fetchall()
    return str(check), rows


async def _upload(client: Any, body: bytes) -> Any:
    return await client.post("/api/v1/jobs", data=io.BytesIO(body), headers=AVI)


@pytest.fixture
def clips(tmp_path: Path) -> tuple[bytes, bytes]:
    """A short clip, and one that takes a few seconds to track."""
    photo = data.load_rgb(FACE_PHOTO)
    short = write_clip(photo, tmp_path / "short.avi", 10, frame_size=(160, 120))
    long = write_face_then_nobody(tmp_path / "long.avi", render_frame(photo, 0), 300, 0)
    return short.read_bytes(), long.read_bytes()


@pytest.fixture
def disk(tmp_path: Path, clips: tuple[bytes, bytes]) -> Iterator[Path]:
    """A small tmpfs as the state directory: room for the clips, filled in milliseconds."""
    with tiny_tmpfs(tmp_path / "disk", size=str(len(clips[1]) + (4 << 20))) as mounted:
        yield mounted


async def test_a_full_disk_refuses_the_upload_fails_the_job_and_keeps_the_older_jobs(
    faced_client: Any, clips: tuple[bytes, bytes], disk: Path
) -> None:
    short, long = clips
    state = disk
    client = await faced_client(server={"state_dir": str(state)})
    first = await _upload(client, short)
    older = (await first.json())["jobs"][0]["job_id"]
    job = await job_finished(client, older)
    assert job["status"] == "done"
    csv = await (await client.get(job["result"]["csv_url"])).read()

    # The disk fills while a job writes its curves: the job fails, saying why.
    response = await _upload(client, long)
    assert response.status == 202
    running = (await response.json())["jobs"][0]["job_id"]

    async def started() -> bool:
        return (await job_of(client, running))["progress"] > 0

    await until(started, 60, what="the long job processing")
    filler = await asyncio.to_thread(fill_disk, state)
    job = await job_finished(client, running)
    assert job["status"] == "failed", job
    assert job["error"].startswith("cannot write the results: No space left"), job
    assert not any(
        p.name.endswith(".part") for p in await asyncio.to_thread(_files, state / "jobs")
    )

    # An upload on the full disk (full again: the failed job freed its partial files).
    await asyncio.to_thread(fill_disk, state)
    refused = await _upload(client, short)
    assert refused.status == 507, await refused.text()
    error = (await refused.json())["error"]
    assert "No space left on device" in error, error
    listed = await (await client.get("/api/v1/jobs")).json()
    assert [j["id"] for j in listed["jobs"]] == [running, older]

    # The job before is intact: its row, its files.
    assert (await job_of(client, older))["status"] == "done"
    assert await (await client.get(f"/api/v1/job/{older}/csv")).read() == csv
    await asyncio.to_thread(filler.unlink)  # room again: jobs run again
    again = await _upload(client, short)
    assert again.status == 202
    assert (await job_finished(client, (await again.json())["jobs"][0]["job_id"]))[
        "status"
    ] == "done"
    await client.close()
    check, rows = await asyncio.to_thread(_integrity, state / "jobs.sqlite3")
    assert check == "ok"
    assert [status for _, status in rows] == ["done", "failed", "done"]


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


async def _take_and_config(tmp_path: Path, frames: int) -> tuple[bytes, Path, str]:
    """A small take's bytes, a state directory and the daemon's config using it."""

    def take() -> bytes:
        photo = data.load_rgb(FACE_PHOTO)
        clip = write_clip(photo, tmp_path / "take.avi", frames, frame_size=(160, 120))
        return clip.read_bytes()

    state = tmp_path / "state"
    config = f'[server]\nstate_dir = "{state}"\n[audio]\nsink = "none"\n'
    return await asyncio.to_thread(take), state, config


async def test_kill_9_while_jobs_are_accepted_and_processed_loses_no_accepted_job(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    body, state, config = await _take_and_config(tmp_path, 20)
    config += "[limits]\nrequests_per_s = 1000\nrequest_burst = 1000\n"
    config += "[jobs]\nmax_queued = 1000\n"
    rng = random.Random(18)
    accepted: list[str] = []
    for kill in range(KILLS):
        faced = await run_faced(config_text=config)
        async with aiohttp.ClientSession() as session:

            async def upload_forever(url: str = faced.url) -> None:
                while True:
                    async with session.post(
                        f"{url}/api/v1/jobs", data=io.BytesIO(body), headers=AVI
                    ) as response:
                        assert response.status == 202, await response.text()
                        accepted.append((await response.json())["jobs"][0]["job_id"])
                    await asyncio.sleep(rng.uniform(0, 0.2))

            uploader = asyncio.create_task(upload_forever())
            await asyncio.sleep(rng.uniform(0.5, 2.5))  # uploads, processing, both at once
            faced.process.send_signal(signal.SIGKILL)
            assert await faced.wait_exit() == -signal.SIGKILL, f"kill {kill}"
            uploader.cancel()
            await asyncio.gather(uploader, return_exceptions=True)
        check, rows = await asyncio.to_thread(_integrity, state / "jobs.sqlite3")
        assert check == "ok", f"kill {kill}"
        assert set(accepted) <= {job_id for job_id, _ in rows}, f"kill {kill}"

    # The last kill cut a job off mid-run unless it fell between two jobs.
    cut_off = any(status == "processing" for _, status in rows)
    started = time.monotonic()
    faced = await run_faced(config_text=config)
    async with aiohttp.ClientSession() as session:

        async def all_done() -> bool:
            async with session.get(f"{faced.url}/api/v1/jobs?limit=100") as response:
                jobs = (await response.json())["jobs"]
            statuses = {job["id"]: job["status"] for job in jobs}
            failed = [(job["id"], job["error"]) for job in jobs if job["status"] == "failed"]
            assert not failed, failed
            return all(statuses.get(job_id) == "done" for job_id in accepted)

        await until(all_done, 60, interval=0.2, what="every accepted job done")
    caught_up_s = time.monotonic() - started
    assert ("jobs resumed" in faced.stderr) == cut_off  # the start requeued it
    _, rows = await asyncio.to_thread(_integrity, state / "jobs.sqlite3")
    directories = await asyncio.to_thread(lambda: {p.name for p in (state / "jobs").iterdir()})
    assert directories == {job_id for job_id, _ in rows}  # cut-off uploads removed
    assert len(accepted) > KILLS
    print(
        f"\njobs: {KILLS} kills, {len(accepted)} accepted (202), {len(rows)} in the database,"
        f" all done {caught_up_s:.1f} s after the last start"
        f" ({'a job' if cut_off else 'no job'} cut off mid-run by the last kill)"
    )


async def test_a_video_left_by_a_kill_after_the_jobs_end_is_removed_at_start(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    # A job's end is committed before its video is removed (so that a kill in between never
    # leaves a job to run again without its video); the video such a kill leaves behind is
    # removed by the next start, and a kept one stays.
    body, state, config = await _take_and_config(tmp_path, 10)
    faced = await run_faced(config_text=config)
    ids = {}
    async with aiohttp.ClientSession(faced.url) as session:
        for name, query in (("dropped", ""), ("kept", "?keep_video=1")):
            async with session.post(f"/api/v1/jobs{query}", data=body, headers=AVI) as response:
                assert response.status == 202, await response.text()
                ids[name] = (await response.json())["jobs"][0]["job_id"]
        for job_id in ids.values():
            assert (await job_finished(session, job_id))["status"] == "done"
    faced.process.send_signal(signal.SIGKILL)
    await faced.wait_exit()
    dropped = state / "jobs" / ids["dropped"] / "video.avi"  # named after its content type
    kept = state / "jobs" / ids["kept"] / "video.avi"

    def exists(path: Path) -> Any:
        return asyncio.to_thread(path.exists)

    assert not await exists(dropped) and await exists(kept)
    # What a kill between the commit and the removal leaves.
    await asyncio.to_thread(dropped.write_bytes, body)
    others = {p.name for p in await asyncio.to_thread(_files, dropped.parent)}

    faced = await run_faced(config_text=config)
    async with aiohttp.ClientSession(faced.url) as session:

        async def removed() -> bool:
            return not await exists(dropped)

        await until(removed, 10, what="the leftover video removed")
        files = {p.name for p in await asyncio.to_thread(_files, dropped.parent)}
        assert files == others - {"video.avi"} and await exists(kept)
        for job_id in ids.values():
            job = await job_of(session, job_id)
            assert job["status"] == "done", job
            async with session.get(job["result"]["csv_url"]) as response:
                assert response.status == 200
    assert "removed 1 videos of finished jobs" in faced.stderr
