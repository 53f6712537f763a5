"""``kill -9`` loses no accepted job: the real `faced serve`, a real SQLite file, SIGKILL.

Three takes are accepted; the daemon is killed while the first is processing; a new daemon
on the same state directory runs the interrupted one again and the queued ones after it.
"""

from __future__ import annotations

import asyncio
import io
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.vision.synthetic import write_clip
from tests import data

pytestmark = pytest.mark.slow


async def _status(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as response:
        assert response.status == 200
        job: dict[str, Any] = await response.json()
        return job


async def test_kill_9_while_processing_loses_no_accepted_job(run_faced, tmp_path) -> None:
    clip = await asyncio.to_thread(
        lambda: write_clip(data.load_rgb("tongue.jpg"), tmp_path / "take.avi", 240)
    )
    body = await asyncio.to_thread(clip.read_bytes)
    config = f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    first = await run_faced(config_text=config)
    ids = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(
                f"{first.url}/api/v1/jobs",
                data=io.BytesIO(body),
                headers={"Content-Type": "video/x-msvideo"},
            ) as response:
                assert response.status == 202
                ids.append((await response.json())["jobs"][0]["job_id"])
        async with asyncio.timeout(60):
            while True:  # polling the API: there is nothing in-process to wait on
                job = await _status(session, f"{first.url}/api/v1/job/{ids[0]}")
                if job["progress"] > 0:
                    break
                await asyncio.sleep(0.05)
        first.process.send_signal(signal.SIGKILL)
        assert await first.wait_exit() == -signal.SIGKILL

        second = await run_faced(config_text=config)
        async with asyncio.timeout(120):
            for job_id in ids:
                while True:
                    job = await _status(session, f"{second.url}/api/v1/job/{job_id}")
                    if job["status"] in ("done", "failed"):
                        break
                    await asyncio.sleep(0.1)
                assert job["status"] == "done", job
                assert job["result"]["frames"] == 240
        assert "jobs resumed" in second.stderr
    leftovers = await asyncio.to_thread(lambda: sorted(Path(tmp_path / "state/jobs").iterdir()))
    assert [p.name for p in leftovers] == sorted(ids)  # the videos gone, nothing orphaned
