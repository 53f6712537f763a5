"""`faced ctl` as the operator runs it: a real process against the real daemon on loopback.

Each test runs ``python -m faced ctl …`` and reads its stdout, stderr and exit status;
the daemon is the real app on a loopback port (``faced_client``). The takes' tests give it
a real state directory and send it a real clip (faced.vision.synthetic), or record from a
camera that plays that clip (``file:``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest

from faced.schemas.jobs import Curves
from faced.vision.synthetic import write_clip
from tests import data
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import job_of, until

KEY = "s3cret-key"


async def _start_ctl(
    *args: str, env: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("FACE_")}
    child_env["PYTHONPATH"] = str(REPO_ROOT)
    child_env.update(env or {})
    return await asyncio.create_subprocess_exec(
        # As a terminal starts it, SIGINT at its default: a shell ignores SIGINT in what it
        # runs in the background (`nohup make test &`, a CI runner), and an ignored signal
        # stays ignored across exec, so Ctrl-C would never reach the ctl under test.
        "env",
        "--default-signal=INT",
        sys.executable,
        "-m",
        "faced",
        "ctl",
        *args,
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _ctl(
    *args: str, env: Mapping[str, str] | None = None, seconds: float = 30.0
) -> tuple[int, str, list[str]]:
    """Exit status, stdout and the lines of stderr of ``faced ctl ARGS``."""
    process = await _start_ctl(*args, env=env)
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode().splitlines()


def _url(client: Any) -> str:
    return str(client.make_url("/")).rstrip("/")


async def test_state_say_history_health(faced_client: Any) -> None:
    client = await faced_client()
    url = _url(client)
    status, out, err = await _ctl("--url", url, "state", "thinking", "--emotion", "happy")
    assert (status, err) == (0, [])
    shown = json.loads(out)
    assert (shown["state"], shown["emotion"]) == ("thinking", "happy")
    status, out, _ = await _ctl("--url", url, "state", "--look", "0.5,-0.25", "--detail", "x")
    assert status == 0 and json.loads(out)["lookAt"] == {"x": 0.5, "y": -0.25}
    status, out, _ = await _ctl("--url", url, "state")
    assert status == 0 and json.loads(out)["state"] == "thinking"
    status, out, _ = await _ctl("--url", url, "state", "--reset")
    assert status == 0 and json.loads(out)["state"] == "idle"

    status, out, err = await _ctl("--url", url, "say", "Hello there", "--emotion", "happy")
    assert (status, err) == (0, [])
    assert json.loads(out) == {"seq": 1}
    status, out, _ = await _ctl("--url", url, "history")
    assert status == 0
    texts = [entry["data"]["text"] for entry in json.loads(out) if entry["type"] == "text"]
    assert texts == ["Hello there"]

    status, out, _ = await _ctl("health", env={"FACE_URL": url})
    health = json.loads(out)
    assert status == 0 and health["status"] == "ok" and "api" in health["components"]


async def test_watch_viewer_prints_json_lines(faced_client: Any) -> None:
    client = await faced_client()
    status, out, err = await _ctl("--url", _url(client), "watch", "--viewer", "--count", "1")
    assert (status, err) == (0, [])
    lines = out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["type"] == "state"


async def test_refusals_are_one_line_and_exit_1(faced_client: Any) -> None:
    client = await faced_client(auth={"api_key": KEY})
    url = _url(client)
    status, out, err = await _ctl("--url", url, "--api-key", KEY, "state", "dancing")
    assert status == 1 and out == "" and len(err) == 1
    assert err[0].startswith("faced ctl: 400: invalid value for 'state': 'dancing'; allowed:")
    status, out, err = await _ctl("--url", url, "say", "hi", env={"FACE_API_KEY": "wrong"})
    assert status == 1 and out == "" and len(err) == 1
    assert err[0].startswith("faced ctl: 403: ")
    status, _, err = await _ctl("--url", url, "say", "hi")
    assert status == 1 and len(err) == 1 and err[0].startswith("faced ctl: 401: ")
    status, out, _ = await _ctl("--url", url, "say", "hi", env={"FACE_API_KEY": KEY})
    assert status == 0 and json.loads(out) == {"seq": 1}


async def test_daemon_down_and_bad_arguments() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for action in (["health"], ["state", "thinking"], ["watch"], ["watch", "--viewer"]):
        status, out, err = await _ctl("--url", down, *action)
        assert status == 1 and out == "" and len(err) == 1, (action, err)
        assert "cannot connect (Connection refused)" in err[0]
    status, _, err = await _ctl("--url", "box.local:9999", "health")
    assert status == 2 and err == [
        "faced ctl: url must start with http:// or https://, not 'box.local:9999'"
    ]
    status, _, err = await _ctl("state", "--look", "left")
    assert status == 2 and "expected X,Y" in err[-1]
    status, _, err = await _ctl("watch", "--count", "0")
    assert status == 2 and "expected a whole number >= 1" in err[-1]


# --- takes (jobs) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(data.load_rgb("tongue.jpg"), tmp_path_factory.mktemp("clips") / "t.avi", 30)


def _jobs_config(tmp_path: Path, **sections: Any) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}, "jobs": {}, **sections}


@pytest.mark.slow
async def test_a_take_waits_saves_its_results_then_is_listed_and_deleted(
    faced_client: Any, clip: Path, tmp_path: Path
) -> None:
    client = await faced_client(**_jobs_config(tmp_path, auth={"api_key": KEY}))
    url, keyed = _url(client), {"FACE_API_KEY": KEY}
    out_dir = tmp_path / "out"
    await asyncio.to_thread(out_dir.mkdir)
    curves_file = out_dir / "my curves.json"
    status, out, err = await _ctl(
        "--url", url, "take", str(clip), "--label", "ctl take",
        "--csv", str(out_dir), "--curves", str(curves_file), "--video", str(out_dir),
        env=keyed, seconds=90,
    )  # fmt: skip
    assert (status, err) == (0, []), err
    job = json.loads(out)
    assert job["status"] == "done" and job["label"] == "ctl take" and job["source"] == "upload"
    result = job["result"]
    assert result["frames"] == 30 and result["faces_found"] > 0
    assert result["video_url"] is not None  # --video kept it without --keep-video
    stem = Path(result["csv_name"]).stem
    assert stem.startswith("ctl-take_")  # the daemon's <slate>_<take>_<subject>
    assert job["saved"] == {
        "csv": str(out_dir / result["csv_name"]),
        "curves": str(curves_file),
        "video": str(out_dir / f"{stem}.avi"),  # the upload's video/x-msvideo
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    served_csv = await (await client.get(result["csv_url"], headers=headers)).read()

    def saved() -> tuple[bytes, bytes, bytes, bytes, list[str]]:
        return (
            (out_dir / result["csv_name"]).read_bytes(),
            curves_file.read_bytes(),
            (out_dir / f"{stem}.avi").read_bytes(),
            clip.read_bytes(),
            sorted(p.name for p in out_dir.iterdir()),
        )

    csv_bytes, curves_bytes, video_bytes, clip_bytes, names = await asyncio.to_thread(saved)
    assert csv_bytes == served_csv
    curves = msgspec.json.decode(curves_bytes, type=Curves)
    assert len(curves.frames) == 30 and curves.fps == result["fps"]
    assert video_bytes == clip_bytes
    assert names == sorted(
        [result["csv_name"], curves_file.name, f"{stem}.avi"]
    )  # no temporary file left beside them

    status, out, _ = await _ctl("--url", url, "jobs", "--limit", "5", env=keyed)
    listed = json.loads(out)
    assert status == 0 and listed["total"] == 1 and listed["limit"] == 5
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    status, out, _ = await _ctl("--url", url, "jobs", "--offset", "1", env=keyed)
    assert status == 0 and json.loads(out)["jobs"] == []
    status, out, _ = await _ctl("--url", url, "job", job["id"], env=keyed)
    assert status == 0 and json.loads(out) == {k: v for k, v in job.items() if k != "saved"}
    status, out, _ = await _ctl("--url", url, "job", job["id"], "--follow", env=keyed)
    lines = out.splitlines()  # finished already: the one event, then the end
    assert status == 0 and len(lines) == 1 and json.loads(lines[0])["status"] == "done"

    status, out, err = await _ctl("--url", url, "jobs")  # no key
    assert status == 1 and out == "" and len(err) == 1 and err[0].startswith("faced ctl: 401: ")
    status, out, err = await _ctl("--url", url, "job", job["id"], "--delete", env=keyed)
    assert (status, err) == (0, []) and json.loads(out) == {"id": job["id"], "deleted": True}
    status, out, err = await _ctl("--url", url, "job", job["id"], env=keyed)
    assert (status, out) == (1, "") and err == [f"faced ctl: 404: no job '{job['id']}'"]


@pytest.mark.slow
async def test_a_take_queued_then_waited_for_and_a_failed_take(
    faced_client: Any, clip: Path, tmp_path: Path
) -> None:
    client = await faced_client(**_jobs_config(tmp_path))
    url = _url(client)
    status, out, err = await _ctl("--url", url, "take", str(clip), "--fps", "10")
    assert (status, err) == (0, [])
    queued = json.loads(out)  # printed at once: the job as it stands
    assert queued["source"] == "upload" and queued["status"] in ("pending", "processing", "done")
    status, out, err = await _ctl("--url", url, "job", queued["id"], "--wait", seconds=90)
    assert (status, err) == (0, [])
    done = json.loads(out)
    assert done["status"] == "done" and done["result"]["fps"] == 10
    assert done["result"]["video_url"] is None
    status, out, err = await _ctl("--url", url, "job", queued["id"], "--video", str(tmp_path))
    assert status == 1 and out == "" and len(err) == 1
    assert err[0] == f"faced ctl: 404: job {queued['id']} kept no video (keep_video was false)"

    bad = tmp_path / "bad.mp4"
    await asyncio.to_thread(bad.write_bytes, b"not a video" * 100)
    status, out, err = await _ctl("--url", url, "take", str(bad), "--wait", "--csv", seconds=90)
    failed = json.loads(out)  # the job is printed, then why it failed
    assert status == 1 and failed["status"] == "failed"
    assert err == [f"faced ctl: job {failed['id']} failed: the file cannot be opened as a video"]
    status, out, err = await _ctl("--url", url, "job", failed["id"], "--follow")
    assert status == 1 and json.loads(out.splitlines()[-1])["status"] == "failed"
    assert err == [f"faced ctl: job {failed['id']} failed: the file cannot be opened as a video"]


@pytest.mark.slow
async def test_a_camera_take_saves_its_video(faced_client: Any, clip: Path, tmp_path: Path) -> None:
    config = _jobs_config(tmp_path, camera={"source": f"file:{clip}", "tracking": False})
    client = await faced_client(**config)
    url = _url(client)
    status, out, err = await _ctl(
        "--url", url, "take", "--record", "1", "--label", "cam", "--video", str(tmp_path),
        seconds=90,
    )  # fmt: skip
    assert (status, err) == (0, []), err
    job = json.loads(out)
    assert job["source"] == "camera" and job["status"] == "done"
    video = Path(job["saved"]["video"])
    assert video.parent == tmp_path and video.name == Path(job["result"]["csv_name"]).stem + ".avi"
    assert (await asyncio.to_thread(video.stat)).st_size > 0


@pytest.mark.slow
async def test_ctrl_c_while_waiting_leaves_the_take_running(
    faced_client: Any, clip: Path, tmp_path: Path
) -> None:
    config = _jobs_config(tmp_path, camera={"source": f"file:{clip}", "tracking": False})
    client = await faced_client(**config)
    url = _url(client)
    waiting = await _start_ctl("--url", url, "take", "--record", "60", "--wait")
    try:

        async def recording() -> bool:
            page = await (await client.get("/api/v1/jobs?limit=1")).json()
            return bool(page["jobs"]) and page["jobs"][0]["recording"]

        await until(recording, 30, what="the 60 s take recording")
        page = await (await client.get("/api/v1/jobs?limit=1")).json()
        job_id = page["jobs"][0]["id"]
        status, out, err = await _ctl("--url", url, "job", job_id, "--csv")
        assert status == 1 and out == ""
        assert err == [
            f"faced ctl: job {job_id} is pending: no results yet (--wait waits for them)"
        ]
        waiting.send_signal(signal.SIGINT)  # Ctrl-C
        async with asyncio.timeout(30):
            out_bytes, err_bytes = await waiting.communicate()
    finally:
        if waiting.returncode is None:
            waiting.kill()
            await waiting.wait()
    assert waiting.returncode == 130 and out_bytes == b""
    assert err_bytes.decode().splitlines() == [
        f"faced ctl: stopped waiting; job {job_id} goes on (faced ctl job {job_id} --wait, "
        "or --delete)"
    ]
    assert (await job_of(client, job_id))["recording"]  # the take went on
    status, _, _ = await _ctl("--url", url, "job", job_id, "--delete")
    assert status == 0 and (await client.get(f"/api/v1/job/{job_id}")).status == 404


async def test_take_and_job_arguments(tmp_path: Path) -> None:
    """Refused before any request (the daemon is not even there): exit 2, one line."""
    down = f"http://127.0.0.1:{free_port()}"
    clip = tmp_path / "c.avi"
    await asyncio.to_thread(clip.write_bytes, b"x")
    for args, words in [
        (["take"], "give a VIDEO file or --record SECONDS"),
        (["take", str(clip), "--record", "2"], "give a VIDEO file or --record SECONDS"),
        (["take", str(tmp_path / "none.mp4")], "no video file"),
        (["take", str(tmp_path)], "no video file"),  # a directory
        (["take", str(clip), "--fps", "0"], "expected a number > 0"),
        (["take", "--record", "soon"], "expected a number > 0"),
        (["jobs", "--limit", "0"], "expected a whole number >= 1"),
        (["jobs", "--offset", "-1"], "expected a whole number >= 0"),
        (["job", "f" * 32, "--delete", "--wait"], "--delete goes alone"),
        (["job", "f" * 32, "--follow", "--csv"], "--follow goes alone"),
    ]:
        status, out, err = await _ctl("--url", down, *args)
        assert status == 2 and out == "" and words in err[-1], (args, err)
    status, out, err = await _ctl("--url", down, "jobs")
    assert status == 1 and len(err) == 1 and "cannot connect (Connection refused)" in err[0]


@pytest.mark.slow
async def test_a_terminal_sees_the_progress_on_one_line(
    faced_client: Any, clip: Path, tmp_path: Path
) -> None:
    """With stderr a terminal (a pty), --wait rewrites one progress line, then clears it."""
    client = await faced_client(**_jobs_config(tmp_path))
    terminal, stderr = os.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "faced", "ctl", "--url", _url(client),
            "take", str(clip), "--wait",
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
        os.close(stderr)
        stderr = -1
        async with asyncio.timeout(90):
            out, _ = await process.communicate()
        shown = await asyncio.to_thread(_read_all, terminal)
    finally:
        os.close(terminal)
        if stderr >= 0:
            os.close(stderr)
    job = json.loads(out)
    assert process.returncode == 0 and job["status"] == "done"
    assert "\n" not in shown  # one line, rewritten
    *steps, last, cleared, end = shown.split("\r")
    assert (last.rstrip(), cleared.strip(), end) == (f"job {job['id']}: done 100%", "", "")
    assert all(step.startswith(f"job {job['id']}: ") for step in steps[1:])


def _read_all(fd: int) -> str:
    """What a pty's other end wrote (its writer gone: EIO ends it)."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()
