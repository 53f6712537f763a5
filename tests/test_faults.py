"""Faults, with nothing lost: the real ``faced serve`` process while its world breaks.

The faults are made at the OS boundary only: the ``file:`` camera's file removed and put
back, the ``wav:`` sink pointed at ``/dev/full`` (every write fails) and back, a model file
removed or damaged, a tiny tmpfs as the state directory filled to the last byte, ``kill -9``
during writes, SIGTERM under load. Each test says the bound it checks; the recovery times
are printed (``-s``) and recorded in docs/performance.md ("Faults").
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from faced.config.layers import PERSISTED_LAYER_FILE
from faced.vision.models import default_model_dir
from tests import data
from tests.conftest import REPO_ROOT, FacedProcess, RunFaced
from tests.helpers import fill_disk, kill_writes, until
from tests.speaker_helpers import make_wav, noise

pytestmark = pytest.mark.slow

FACE_PHOTO = "tongue.jpg"
CAMERA_RECOVERY_S = 5.0
"""The issue's bound: tracking runs again within 5 s of the camera's return (the camera is
retried every 2 s at most, so this leaves ~3 s for the reopen and the first result on a
busy 2-core CI machine)."""


async def _health(session: aiohttp.ClientSession, faced: FacedProcess) -> dict[str, Any]:
    async with session.get(f"{faced.url}/health") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def _camera_daemon(run_faced: RunFaced, tmp_path: Path, *extra: str) -> tuple[Path, Any]:
    photo = tmp_path / "camera.jpg"
    await asyncio.to_thread(lambda: shutil.copyfile(data.path(FACE_PHOTO), photo))
    faced = await run_faced("--camera", f"file:{photo}", *extra)
    return photo, faced


async def test_the_camera_goes_away_and_tracking_resumes_within_5_s_of_its_return(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    photo, faced = await _camera_daemon(run_faced, tmp_path)
    away = tmp_path / "unplugged.jpg"
    async with aiohttp.ClientSession() as session:

        async def tracking() -> dict[str, Any]:
            return (await _health(session, faced))["components"]["tracking"]

        await until(lambda: _processed_more(tracking, 0), 30, what="first tracking results")
        await asyncio.to_thread(photo.rename, away)  # unplugged
        gone = time.monotonic()
        health: dict[str, Any] = {}

        async def camera_failed() -> bool:
            nonlocal health
            health = await _health(session, faced)
            return bool(health["components"]["camera"]["status"] == "error")

        await until(camera_failed, 5, what="the camera reported as failed")
        noticed_s = time.monotonic() - gone
        camera = health["components"]["camera"]
        assert health["status"] == "degraded"
        assert camera["error"] == f"{photo}: the file vanished"
        assert camera["down_s"] >= 0
        # Long enough away for the retries to back off to their longest wait.
        await asyncio.sleep(4)
        camera = (await _health(session, faced))["components"]["camera"]
        assert camera["status"] == "error" and camera["down_s"] >= 3.5
        processed = (await tracking())["processed"]

        await asyncio.to_thread(away.rename, photo)  # plugged back in
        back = time.monotonic()
        await until(
            lambda: _processed_more(tracking, processed),
            CAMERA_RECOVERY_S,
            interval=0.02,
            what="tracking results after the camera came back",
        )
        recovered_s = time.monotonic() - back
        health = await _health(session, faced)
    camera = health["components"]["camera"]
    assert health["status"] == "ok"
    assert camera["status"] == "ok" and "error" not in camera and "down_s" not in camera
    assert camera["reopens"] == 1
    assert camera["last_error"] == f"{photo}: the file vanished"
    assert camera["last_outage_s"] >= 4
    print(f"\ncamera: noticed in {noticed_s:.2f} s, tracking again {recovered_s:.2f} s after")


async def _processed_more(tracking: Any, than: int) -> bool:
    return bool((await tracking())["processed"] > than)


async def test_the_speaker_fails_the_api_keeps_working_and_playback_resumes(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    sink = tmp_path / "speaker.wav"
    await asyncio.to_thread(sink.symlink_to, "/dev/full")  # every write: ENOSPC
    config = f'[audio]\nsink = "wav:{sink}"\nrate = 16000\nchannels = 1\n'
    config += "[audio.tts]\nenabled = false\n"
    config += f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    faced = await run_faced(config_text=config)
    chunk = make_wav(noise(0.2, 16000), 16000)
    wav = {"Content-Type": "audio/wav"}
    async with aiohttp.ClientSession() as session:

        async def speaker() -> dict[str, Any]:
            return (await _health(session, faced))["components"]["speaker"]

        async with session.post(f"{faced.url}/api/audio", data=chunk, headers=wav) as response:
            assert response.status == 200
        await until(lambda: _reopened(speaker, 1), 10, what="the speaker's failure")
        # The API keeps answering while the device fails.
        async with session.post(f"{faced.url}/api/state", json={"emotion": "happy"}) as response:
            assert response.status == 200
        async with session.get(f"{faced.url}/api/audio/volume") as response:
            assert response.status == 200

        await asyncio.to_thread(sink.unlink)  # the device is back: a real file this time
        back = time.monotonic()

        async def played() -> bool:
            async with session.post(f"{faced.url}/api/audio", data=chunk, headers=wav) as reply:
                assert reply.status == 200
            return bool((await speaker())["played_s"] > 0)

        await until(played, 10, interval=0.25, what="playback after the device came back")
        resumed_s = time.monotonic() - back
        report = await speaker()
    assert report["status"] == "ok" and "error" not in report
    assert await asyncio.to_thread(lambda: sink.is_file() and sink.stat().st_size > 44)
    print(f"\nspeaker: playing again {resumed_s:.2f} s after the device came back")


async def _reopened(speaker: Any, count: int) -> bool:
    return bool((await speaker())["reopens"] >= count)


def _copy_models(target: Path) -> Path:
    return Path(shutil.copytree(default_model_dir(), target, symlinks=False))


def _damage(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fault", ["missing", "corrupt"])
async def test_a_model_missing_or_corrupt_at_start_is_one_line_and_exit_78(
    run_faced: RunFaced, tmp_path: Path, fault: str
) -> None:
    directory = await asyncio.to_thread(_copy_models, tmp_path / "models")
    victim = directory / "face_landmarks_detector.tflite"  # in the manifest
    await asyncio.to_thread(victim.unlink if fault == "missing" else lambda: _damage(victim))
    faced = await run_faced(config_text=f'[vision]\nmodel_dir = "{directory}"\n', wait=False)
    assert await faced.wait_exit(60) == 78, faced.stderr
    errors = [line for line in faced.stderr_lines if str(victim) in line]
    assert len(errors) == 1, faced.stderr
    assert ("missing" if fault == "missing" else "corrupt") in errors[0]
    assert "faced models fetch" in errors[0] and "make setup" in errors[0]
    assert "Traceback" not in faced.stderr


async def _send(
    session: aiohttp.ClientSession, faced: FacedProcess, method: str, path: str, body: Any
) -> tuple[int, Any]:
    async with session.request(method, f"{faced.url}{path}", json=body) as response:
        return response.status, await response.json()


async def test_a_full_disk_refuses_each_setting_with_507_and_keeps_the_old_value(
    run_faced: RunFaced, tmp_path: Path, tiny_disk: Path
) -> None:
    state = tiny_disk
    config = f'[server]\nstate_dir = "{state}"\n'
    config += '[audio]\nsink = "none"\n[audio.tts]\nenabled = false\n'
    # The camera sees one person, for the calibration; the state is on the tmpfs.
    photo = tmp_path / "camera.jpg"
    await asyncio.to_thread(lambda: shutil.copyfile(data.path(FACE_PHOTO), photo))
    faced = await run_faced("--camera", f"file:{photo}", config_text=config)
    changes: list[tuple[str, str, Any, Any, str]] = [
        ("PUT", "/api/config", {"face": "orb"}, {"face": "default"}, "viewer.json"),
        ("POST", "/api/audio/volume", {"volume": 30}, {"volume": 70}, "audio.json"),
        (
            "PATCH",
            "/api/system/config",
            {"follow": {"hold_s": 2}},
            {"follow": {"hold_s": 3}},
            PERSISTED_LAYER_FILE,
        ),
        ("POST", "/api/tracking/calibrate", {"seconds": 0.5}, {"seconds": 0.5}, ""),
    ]
    async with aiohttp.ClientSession() as session:
        await until(lambda: _person_in_view(session, faced), 30, what="a person in view")
        before: dict[str, bytes] = {}
        for method, path, first, _, _ in changes:
            status, body = await _send(session, faced, method, path, first)
            if status == 409 and path == "/api/tracking/calibrate":
                # Under load a frame can miss the face for the whole window: ask again.
                status, body = await _send(session, faced, method, path, first)
            assert status == 200, (path, body)
        for name in ("viewer.json", "audio.json", PERSISTED_LAYER_FILE, "calibration.json"):
            before[name] = await asyncio.to_thread((state / name).read_bytes)

        await asyncio.to_thread(fill_disk, state)
        for method, path, _, second, _ in changes:
            status, body = await _send(session, faced, method, path, second)
            assert status == 507, (path, body)
            assert body["error"].startswith("cannot save the setting") or body["error"].startswith(
                "cannot save the settings"
            ), body
            assert str(state) in body["error"] and "No space left on device" in body["error"]
        # What the daemon serves and what the disk holds are the values from before.
        for path, key, old in [
            ("/api/config", "face", "orb"),
            ("/api/audio/volume", "volume", 30),
        ]:
            async with session.get(f"{faced.url}{path}") as response:
                assert (await response.json())[key] == old
        for name, old_bytes in before.items():
            assert await asyncio.to_thread((state / name).read_bytes) == old_bytes, name
        leftovers = [p.name for p in await asyncio.to_thread(lambda: list(state.iterdir()))]
        assert sorted(leftovers) == sorted([*before, "filler"])  # no temporaries left

        await asyncio.to_thread((state / "filler").unlink)  # space again
        for method, path, _, second, _ in changes:
            status, body = await _send(session, faced, method, path, second)
            assert status == 200, (path, body)
    layer = msgspec.json.decode(await asyncio.to_thread((state / PERSISTED_LAYER_FILE).read_bytes))
    assert layer == {"follow": {"hold_s": 3}}
    await faced.kill()


async def _person_in_view(session: aiohttp.ClientSession, faced: FacedProcess) -> bool:
    async with session.get(f"{faced.url}/health") as response:
        tracking = (await response.json())["components"]["tracking"]
    return bool(tracking.get("present"))


@pytest.mark.parametrize("kind", ["face", "volume", "calibration", "settings"])
def test_kill_9_during_writes_leaves_the_old_or_the_new_value(tmp_path: Path, kind: str) -> None:
    report = kill_writes(kind, tmp_path / "state", runs=50)
    assert report.kills == 50
    # Some kills must land inside a write, or the test proved nothing about half writes.
    assert report.mid_write >= 5, report
    print(f"\n{kind}: 50 kills, {report.mid_write} inside a write, every file whole")


async def test_kill_9_of_the_daemon_while_it_saves_leaves_every_file_whole(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config = f'[server]\nstate_dir = "{state}"\n[audio]\nsink = "none"\n'
    config += "[limits]\nrequests_per_s = 10000\nrequest_burst = 10000\n"
    # Per file: the last value the daemon acknowledged, and the one in flight at the kill.
    acked: dict[str, Any] = {}
    sent: dict[str, Any] = {}
    writes: list[tuple[str, str, str, Any]] = [
        ("audio.json", "POST", "/api/audio/volume", lambda n: {"volume": n % 101}),
        ("viewer.json", "PUT", "/api/config", lambda n: {"face": ("default", "orb")[n % 2]}),
        (PERSISTED_LAYER_FILE, "PATCH", "/api/system/config", lambda n: {"follow": {"hold_s": n}}),
    ]
    for run in range(3):
        faced = await run_faced(config_text=config)
        async with aiohttp.ClientSession() as session:

            async def save_forever(faced: FacedProcess = faced) -> None:
                n = 0
                while True:
                    n += 1
                    for name, method, path, body in writes:
                        sent[name] = body(n)
                        status, answer = await _send(session, faced, method, path, sent[name])
                        assert status == 200, answer
                        acked[name] = sent[name]

            saver = asyncio.create_task(save_forever())
            await asyncio.sleep(0.3 + 0.25 * run)
            faced.process.send_signal(signal.SIGKILL)
            await faced.wait_exit()
            saver.cancel()
            await asyncio.gather(saver, return_exceptions=True)
        assert acked, "no write was acknowledged before the kill"
        for name, _, _, _ in writes:
            if name not in acked:
                continue
            saved = msgspec.json.decode(await asyncio.to_thread((state / name).read_bytes))
            key = next(iter(sent[name]))
            assert saved[key] in (acked[name][key], sent[name][key]), (name, saved)
        acked.clear()


async def test_sigterm_under_load_exits_cleanly_within_the_shutdown_budget(
    run_faced: RunFaced, tmp_path: Path
) -> None:
    unit = await asyncio.to_thread((REPO_ROOT / "systemd" / "faced.service").read_text)
    stop_line = next(line for line in unit.splitlines() if line.startswith("TimeoutStopSec="))
    budget_s = float(stop_line.split("=")[1])  # systemd kills the daemon after this
    photo = tmp_path / "camera.jpg"
    await asyncio.to_thread(lambda: shutil.copyfile(data.path(FACE_PHOTO), photo))
    config = f'[server]\nstate_dir = "{tmp_path / "state"}"\n'
    config += "[limits]\nrequests_per_s = 10000\nrequest_burst = 10000\nmax_viewers = 40\n"
    faced = await run_faced("--camera", f"file:{photo}", config_text=config)
    jpeg = await asyncio.to_thread(lambda: data.path(FACE_PHOTO).read_bytes())
    stop = asyncio.Event()
    async with aiohttp.ClientSession() as session:
        viewers = [await session.ws_connect(f"{faced.url}/ws/viewer") for _ in range(20)]
        agents = [await session.ws_connect(f"{faced.url}/ws/agent") for _ in range(3)]

        async def agent_load(ws: aiohttp.ClientWebSocketResponse) -> None:
            n = 0
            while not stop.is_set():  # 50 messages/s each
                n += 1
                await ws.send_json({"emotion": ("happy", "sad")[n % 2]})
                await asyncio.sleep(0.02)

        analyzed: list[int] = []

        async def analyze_load() -> None:
            while not stop.is_set():
                async with session.post(
                    f"{faced.url}/v1/analyze", data=jpeg, headers={"Content-Type": "image/jpeg"}
                ) as response:
                    await response.read()
                    analyzed.append(response.status)

        async def drain(ws: aiohttp.ClientWebSocketResponse) -> None:
            async for _ in ws:
                pass

        load = [asyncio.create_task(agent_load(ws)) for ws in agents]
        load += [asyncio.create_task(analyze_load()) for _ in range(2)]
        load += [asyncio.create_task(drain(ws)) for ws in viewers]
        await asyncio.sleep(2)
        assert analyzed and set(analyzed) == {200}, analyzed  # the load is real
        started = time.monotonic()
        faced.terminate()
        code = await faced.wait_exit(budget_s + 5)
        exited_s = time.monotonic() - started
        stop.set()
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
    assert code == 0, faced.stderr
    assert exited_s < budget_s, exited_s
    assert "Traceback" not in faced.stderr
    print(f"\nSIGTERM under load: exited 0 in {exited_s:.2f} s (budget {budget_s:.0f} s)")
