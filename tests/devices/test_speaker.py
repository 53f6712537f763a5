"""The speaker's device failing, the volume, and the command line.

Failures are made at the OS boundary: a ``wav:`` path in a
directory that does not exist yet (open fails), and ``/dev/full`` (every write fails with
ENOSPC). The volume survives restarts of the real ``faced serve`` process.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tests.speaker_helpers import (
    audio_config,
    make_wav,
    noise,
    post_chunk,
    read_sink_async,
    speaker_health,
    to_int16,
    wait_quiet,
    wait_state,
)


async def wait_speaker(client: Any, status: str, seconds: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            report = await speaker_health(client)
            if report["status"] == status:
                return report
            await asyncio.sleep(0.05)


async def wait_reopens(client: Any, count: int) -> None:
    async with asyncio.timeout(20):
        while True:
            if (await speaker_health(client))["reopens"] >= count:
                return
            await asyncio.sleep(0.05)


async def test_a_device_that_cannot_open_is_reported_retried_and_recovers(
    faced_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faced.devices.speaker")
    later = tmp_path / "not-yet"
    sink = later / "out.wav"
    client = await faced_client(**audio_config(sink))
    report = await wait_speaker(client, "error")
    assert "No such file or directory" in report["error"]
    health = await (await client.get("/health")).json()
    assert health["status"] == "degraded"
    # Everything else keeps working; chunks are still checked, relayed, and not hoarded.
    assert (await client.post("/api/state", json={"emotion": "happy"})).status == 200
    viewer = await client.ws_connect("/ws/viewer")
    assert (await post_chunk(client, make_wav(noise(0.2, 16000), 16000))).status == 200
    assert (await post_chunk(client, b"garbage")).status == 400
    async with asyncio.timeout(5):
        while (await viewer.receive_json()).get("type") != "audio":
            pass
    await viewer.close()
    assert (await speaker_health(client))["dropped_chunks"] == 1
    await asyncio.to_thread(later.mkdir)  # the device appears
    report = await wait_speaker(client, "ok")
    assert report["reopens"] >= 1 and "error" not in report
    chunk = noise(0.3, 16000, seed=11)
    assert (await post_chunk(client, make_wav(chunk, 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.3)
    played, _, _ = await read_sink_async(sink)
    assert np.array_equal(played[:, 0], to_int16(chunk)[:, 0])
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "speaker" in r.message]
    assert len(errors) == 1  # once per reason, not once per retry
    assert any("recovered" in r.message for r in caplog.records)


async def test_a_device_whose_writes_fail_does_not_stop_the_api(
    faced_client: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = audio_config(tmp_path / "unused.wav")
    config["audio"]["sink"] = "wav:/dev/full"
    client = await faced_client(**config)
    await wait_speaker(client, "ok")  # opening works; writing will not
    await client.post("/api/speak", json={"emotion": "happy"})
    assert (await post_chunk(client, make_wav(noise(1.0, 16000), 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_reopens(client, 1)
    # Each new chunk fails the same way: still reported, but logged once, not per chunk.
    await wait_speaker(client, "ok")  # reopened (while in error, chunks are dropped)
    assert (await post_chunk(client, make_wav(noise(0.5, 16000), 16000))).status == 200
    await wait_reopens(client, 2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "No space left on device" in errors[0].message
    # The failed audio was dropped: the sequence counts as heard, the face moves on.
    await wait_state(client, "idle")
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200
    assert (await client.get("/api/audio/volume")).status == 200


async def test_volume_applies_to_the_samples_and_is_checked(
    faced_client: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    client = await faced_client(**audio_config(sink))
    assert await (await client.get("/api/audio/volume")).json() == {"volume": 100, "muted": False}
    response = await client.post("/api/audio/volume", json={"volume": 50})
    assert await response.json() == {"volume": 50, "muted": False}
    loud = noise(0.3, 16000, seed=12)
    assert (await post_chunk(client, make_wav(loud, 16000))).status == 200
    await wait_quiet(client, played_s=0.3)
    assert (await client.post("/api/audio/volume", json={"muted": True})).status == 200
    assert (await post_chunk(client, make_wav(loud, 16000))).status == 200
    await client.post("/api/audio-done")
    await wait_quiet(client, played_s=0.6)
    played, _, _ = await read_sink_async(sink)
    first, second = played[:4800, 0].astype(np.int32), played[4800:, 0]
    expected = to_int16(to_int16(loud)[:, 0] / 32768 * 0.125).astype(np.int32)  # 0.5³
    assert np.abs(first - expected).max() <= 1
    assert len(second) == 4800 and not second.any()  # muted: silence of the same length
    for body, words in [
        ({"volume": 101}, "<= 100"),
        ({"volume": -1}, ">= 0"),
        ({"volume": "loud"}, "volume"),
        ({"muted": "yes"}, "muted"),
        ({"gain": 3}, "gain"),
    ]:
        response = await client.post("/api/audio/volume", json=body)
        assert response.status == 400
        assert words in (await response.json())["error"]
    response = await client.post("/api/audio/volume", data=b"")
    assert response.status == 400
    assert await (await client.get("/api/audio/volume")).json() == {"volume": 50, "muted": True}


async def test_volume_needs_the_key_when_one_is_set(faced_client: Any, tmp_path: Path) -> None:
    config = audio_config(tmp_path / "out.wav")
    client = await faced_client(**config, auth={"api_key": "k"})
    assert (await client.get("/api/audio/volume")).status == 401
    assert (await client.post("/api/audio/volume", json={"volume": 1})).status == 401
    headers = {"Authorization": "Bearer k"}
    response = await client.post("/api/audio/volume", json={"volume": 1}, headers=headers)
    assert response.status == 200


async def test_volume_persists_across_restarts_of_faced_serve(
    run_faced: Any, tmp_path: Path
) -> None:
    sink = tmp_path / "out.wav"
    config_text = f'[server]\nstate_dir = "{tmp_path / "state"}"\n[audio]\nvolume = 70\n'
    first = await run_faced("--audio", f"wav:{sink}", config_text=config_text)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{first.url}/api/audio/volume") as response:
            assert await response.json() == {"volume": 70, "muted": False}
        body = {"volume": 35, "muted": True}
        async with session.post(f"{first.url}/api/audio/volume", json=body) as response:
            assert response.status == 200
        async with session.get(f"{first.url}/health") as response:
            speaker = (await response.json())["components"]["speaker"]
            assert speaker["sink"] == f"wav:{sink}" and speaker["volume"] == 35
        first.terminate()
        assert await first.wait_exit() == 0
        second = await run_faced("--audio", f"wav:{sink}", config_text=config_text)
        async with session.get(f"{second.url}/api/audio/volume") as response:
            assert await response.json() == {"volume": 35, "muted": True}
        async with session.get(f"{second.url}/health") as response:
            assert (await response.json())["components"]["speaker"]["muted"] is True


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "faced", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False
    )


@pytest.mark.parametrize(
    ("sink", "words"),
    [
        ("bogus", "expected none, wav:<path> or pyaudio[:DEVICE]"),
        ("wav:", "wav: needs a path"),
    ],
)
def test_a_bad_sink_stops_serve_with_exit_78(sink: str, words: str) -> None:
    result = run_cli("serve", "--port", "1", "--audio", sink)
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"audio.sink = {sink!r}" in lines[0] and words in lines[0]


@pytest.mark.skipif(
    importlib.util.find_spec("pyaudio") is not None, reason="pyaudio is installed here"
)
def test_a_pyaudio_sink_without_pyaudio_stops_serve_with_exit_78() -> None:
    result = run_cli("serve", "--port", "1", "--audio", "pyaudio:USB")
    assert result.returncode == 78
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "audio.sink = 'pyaudio:USB': pyaudio is not installed" in lines[0]


def test_config_check_names_a_bad_audio_setting(tmp_path: Path) -> None:
    path = tmp_path / "faced.toml"
    path.write_text('[audio]\nsink = "none"\n[audio.tts]\npitch = 120\n')
    result = run_cli("config", "check", str(path))
    assert result.returncode == 78
    assert "audio.tts.pitch = 120" in result.stderr and "<= 99" in result.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("pyaudio") is not None, reason="pyaudio is installed here"
)
def test_audio_devices_without_pyaudio_is_one_line_and_exit_1() -> None:
    result = run_cli("audio", "devices")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pyaudio is not installed" in lines[0]
    assert "faced[audio]" in lines[0]


def test_the_audio_command_is_listed() -> None:
    result = run_cli("audio", "--help")
    assert result.returncode == 0 and "devices" in result.stdout


async def test_health_reports_the_speaker(faced_client: Any, tmp_path: Path) -> None:
    client = await faced_client(**audio_config(tmp_path / "out.wav"))
    report = await wait_speaker(client, "ok")
    assert report["rate"] == 16000 and report["channels"] == 1
    assert report["latency_ms"] == 0.0 and report["queued_s"] == 0


def test_the_speaker_bench_prints_each_case_beside_the_baseline() -> None:
    result = run_cli("bench", "speaker", "--seconds", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].startswith("baseline: device bytes to the sink")
    rows = [line for line in lines[3:] if "Hz" in line]
    assert len(rows) == 3
    for row in rows:
        assert float(row.split()[-2]) > 0  # CPU ms per audio second


def test_config_show_writes_the_audio_tts_table_back_as_valid_toml(tmp_path: Path) -> None:
    path = tmp_path / "faced.toml"
    path.write_text('[audio]\nsink = "wav:/tmp/x.wav"\n[audio.tts]\nvoice = "de"\n')
    shown = run_cli("config", "show", "--config", str(path))
    assert shown.returncode == 0, shown.stderr
    assert '[audio.tts]\nenabled = true\nvoice = "de"' in shown.stdout
    again = tmp_path / "shown.toml"
    again.write_text(shown.stdout)
    checked = run_cli("config", "check", str(again))
    assert checked.returncode == 0, checked.stderr
