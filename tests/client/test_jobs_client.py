"""FaceClient's jobs against the real daemon on loopback: a clip in, curves and CSV out.

The real app (``faced_client``) with a real SQLite database in a temp state directory and
the real models; the clip is written from a test photograph (faced.vision.synthetic). The
client is the one agents use, so the tests read faced's schema types.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from faced.client import FaceClient, FacedError
from faced.jobs import livelink
from faced.schemas.jobs import Curves, Job
from faced.vision.synthetic import write_clip
from tests import data

pytestmark = pytest.mark.slow

KEY = "jobs-client-key"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(data.load_rgb("tongue.jpg"), tmp_path_factory.mktemp("clips") / "t.avi", 30)


def _config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}, "jobs": {}, **sections}


async def test_a_clip_from_disk_becomes_curves_and_a_63_column_csv(
    faced_client: Any, clip: Path, tmp_path: Path
) -> None:
    daemon = await faced_client(**_config(tmp_path, auth={"api_key": KEY}))
    async with FaceClient(str(daemon.make_url("/")), api_key=KEY) as face:
        job_id = await face.submit_job(clip, label="client take")  # a path: streamed
        events = [event async for event in face.job_events(job_id)]
        assert all(isinstance(event, Job) and event.id == job_id for event in events)
        assert events[-1].status == "done", events[-1]
        job = await face.wait_job(job_id, timeout_s=60)  # finished: the first event ends it
        assert job.status == "done" and job.error is None and job.progress == 1
        assert job.label == "client take" and job.source == "upload"
        assert job.result is not None and job.result.frames == 30
        assert job.result.faces_found > 0

        curves = await face.job_curves(job_id)
        assert isinstance(curves, Curves) and len(curves.frames) == 30
        rows = list(csv.reader(io.StringIO((await face.job_csv(job_id)).decode())))
        assert rows[0] == list(livelink.HEADER) and len(rows[0]) == 63
        assert len(rows) == 31 and all(len(row) == 63 for row in rows)

        saved_csv = await face.download_job(job_id, "csv", tmp_path)  # a directory: its name
        assert saved_csv == tmp_path / job.result.csv_name
        assert await asyncio.to_thread(saved_csv.read_bytes) == await face.job_csv(job_id)
        saved_curves = await face.download_job(job_id, "curves", tmp_path / "c.json")  # a file
        curves_bytes = await asyncio.to_thread(saved_curves.read_bytes)
        assert msgspec.json.decode(curves_bytes, type=Curves) == curves
        with pytest.raises(FacedError) as not_kept:
            await face.download_job(job_id, "video", tmp_path)
        assert not_kept.value.status == 404 and "kept no video" in not_kept.value.message
        with pytest.raises(FacedError) as unwritable:
            await face.download_job(job_id, "csv", tmp_path / "no such dir" / "x.csv")
        assert unwritable.value.status is None and "cannot write" in unwritable.value.message
        with pytest.raises(ValueError, match="what must be one of"):
            await face.download_job(job_id, "frames", tmp_path)  # type: ignore[arg-type]
        names = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
        assert names == sorted(["c.json", job.result.csv_name, "state"])  # nothing half written

        page = await face.jobs(limit=10)
        assert [listed.id for listed in page.jobs] == [job_id] and page.total == 1
        await face.delete_job(job_id)
        with pytest.raises(FacedError) as gone:
            await face.job(job_id)
        assert gone.value.status == 404


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_bytes_with_options_and_the_daemon_refusals(
    faced_client: Any, clip: Path, tmp_path: Path, encoding: str
) -> None:
    daemon = await faced_client(**_config(tmp_path, auth={"api_key": KEY}))
    url = str(daemon.make_url("/"))
    async with FaceClient(url, api_key=KEY, encoding=encoding) as face:  # type: ignore[arg-type]
        video = await asyncio.to_thread(clip.read_bytes)
        job_id = await face.submit_job(video, fps=10, keep_video=True)
        job = await face.wait_job(job_id, timeout_s=60)
        assert job.status == "done" and job.result is not None, job
        assert job.result.fps == 10 and job.result.video_url is not None
        assert (await face.job(job_id)).status == "done"
        # Bytes go as application/octet-stream: the kept video has no extension to name it by.
        kept = await face.download_job(job_id, "video", tmp_path)
        assert kept == tmp_path / Path(job.result.csv_name).stem
        assert await asyncio.to_thread(kept.read_bytes) == video

        refusals: list[tuple[Callable[[], Awaitable[Any]], int, str]] = [
            (lambda: face.submit_job(b"", label="empty"), 400, "empty"),
            (lambda: face.submit_job(b"x", fps=1000), 400, "fps"),
            (lambda: face.submit_job(record_s=0), 400, "record_s"),
            (lambda: face.submit_job(record_s=5), 503, "camera"),  # this daemon has none
            (lambda: face.job("f" * 32), 404, "no job"),
            (lambda: face.job("../health"), 404, "no job"),  # quoted: stays a job id
            (lambda: face.jobs(limit=0), 400, "limit"),
            (lambda: face.delete_job("nope"), 404, "no job"),
            (lambda: face.job_csv("f" * 32), 404, "no job"),
        ]
        for call, status, words in refusals:
            with pytest.raises(FacedError) as refused:
                await call()
            assert refused.value.status == status, refused.value
            assert words in refused.value.message, refused.value
        with pytest.raises(FacedError) as missing:
            await face.submit_job(tmp_path / "no such clip.avi")
        assert missing.value.status is None and "cannot read" in missing.value.message
        with pytest.raises(ValueError, match="either video"):
            await face.submit_job(b"x", record_s=2)
    async with FaceClient(url) as keyless:
        with pytest.raises(FacedError) as unauthorized:
            await keyless.submit_job(clip)
        assert unauthorized.value.status == 401
