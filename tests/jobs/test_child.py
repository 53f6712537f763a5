"""The job process (faced.jobs.child): a real child Python process, real models, a real clip.

It answers a job with the outcome and its progress on the way, runs at the lower priority,
says how it ended when it is killed under a job, and stops — mid-job too — when its stdin
ends (the daemon idle, or dead: no orphan goes on processing a take).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from faced.config.sections import VisionConfig
from faced.jobs import child
from faced.jobs.store import Settings
from faced.vision.synthetic import write_clip
from tests import data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "t.avi"
    return write_clip(data.load_rgb("tongue.jpg"), path, 150)


def _request(clip: Path, out: Path) -> child.Request:
    return child.Request(
        video=str(clip), out_dir=str(out), settings=Settings(label="t"), take=1, subject="box"
    )


async def test_a_job_runs_in_a_lower_priority_child_that_ends_when_idle(
    clip: Path, tmp_path: Path
) -> None:
    process = child.JobProcess(VisionConfig(), nice=5)
    shares: list[float] = []
    niceness: list[int] = []

    def progress(share: float) -> None:
        if not shares:
            assert process.pid is not None
            niceness.append(os.getpriority(os.PRIO_PROCESS, process.pid))
        shares.append(share)

    try:
        outcome = await process.run(_request(clip, tmp_path), progress)
    finally:
        pid = process.pid
        await process.close()
    assert outcome.frames == 150 and outcome.faces_found > 140
    files = await asyncio.to_thread(lambda: sorted(p.name for p in tmp_path.iterdir()))
    assert files == sorted(["curves.json", outcome.csv_name])
    assert shares == sorted(shares) and 0 < shares[-1] < 1
    assert niceness == [os.getpriority(os.PRIO_PROCESS, 0) + 5]
    assert pid is not None and process.pid is None
    assert not await asyncio.to_thread(Path(f"/proc/{pid}").exists)  # reaped, not a zombie


async def test_a_killed_child_says_how_it_ended_and_a_closed_stdin_stops_a_job(
    clip: Path, tmp_path: Path
) -> None:
    process = child.JobProcess(VisionConfig(), nice=0)
    started = asyncio.Event()
    try:
        job = asyncio.create_task(process.run(_request(clip, tmp_path), lambda _: started.set()))
        await started.wait()
        process.kill()
        with pytest.raises(child.Ended, match=r"ended unexpectedly \(killed by SIGKILL\)"):
            await job
        assert process.pid is None

        # The daemon's death closes the child's stdin: the child stops mid-job by itself.
        started.clear()
        job = asyncio.create_task(process.run(_request(clip, tmp_path), lambda _: started.set()))
        await started.wait()
        running = process._process  # the daemon's end of the pipe
        assert running is not None and running.stdin is not None
        running.stdin.close()
        with pytest.raises(child.Ended, match=r"exit status 0"):
            await job
        curves = tmp_path / "curves.json"
        assert not await asyncio.to_thread(curves.exists)  # a .part at most, never whole
    finally:
        await process.stop()
