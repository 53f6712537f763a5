"""The state directory's files: written whole and durably, read back as Structs.

What persists a setting (the viewer's face pack, the volume) goes through faced.state; the
observable here is the file on a real temporary directory and what is read back from it.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from faced.schemas.audio import Volume
from faced.state import StateFile, state_dir, write_atomically


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "setting.json"
    write_atomically(path, b"old")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["setting.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_write_is_flushed_to_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomically(tmp_path / "volume.json", b"{}")
    assert len(synced) >= 1  # the file (and, where the file system allows, the directory)


def test_a_setting_round_trips_and_a_corrupt_one_reads_as_none(tmp_path: Path) -> None:
    setting = StateFile(tmp_path, "audio.json", Volume, fallback="audio.volume")
    assert setting.read() is None  # nothing persisted yet
    setting.write(Volume(volume=35, muted=True))
    assert setting.read() == Volume(volume=35, muted=True)
    setting.path.write_bytes(b"\x00not json")
    assert setting.read() is None
    setting.path.write_bytes(b'{"volume": 900, "muted": false}')  # out of range
    assert setting.read() is None


def test_a_write_that_cannot_land_raises_and_keeps_the_old_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    setting = StateFile(blocker, "audio.json", Volume, fallback="audio.volume")
    with pytest.raises(OSError):
        setting.write(Volume(volume=10, muted=False))


def test_the_state_directory_follows_the_config_then_systemd(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", f"{tmp_path / 'systemd'}:{tmp_path / 'other'}")
    assert state_dir(make_config(server={"state_dir": str(tmp_path / "own")})) == tmp_path / "own"
    assert state_dir(make_config()) == tmp_path / "systemd"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert state_dir(make_config()) == Path.home() / ".local" / "state" / "faced"


async def test_a_setting_the_disk_refuses_is_a_500_and_stays_as_it_was(
    faced_client: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "state-is-a-file"
    await asyncio.to_thread(blocker.write_bytes, b"")
    client = await faced_client(
        server={"state_dir": str(blocker)},
        audio={"sink": f"wav:{tmp_path / 'out.wav'}", "tts": {"enabled": False}},
    )
    for path, change, before in [
        ("/api/config", {"face": "orb"}, {"face": "default"}),
        ("/api/audio/volume", {"volume": 20}, {"volume": 100, "muted": False}),
    ]:
        method = client.put if path == "/api/config" else client.post
        response = await method(path, json=change)
        assert response.status == 500, path
        assert (await response.json())["error"].startswith(f"cannot save the setting in {blocker}")
        assert await (await client.get(path)).json() == before, path


def test_a_write_removes_the_temporaries_killed_writes_left(tmp_path: Path) -> None:
    setting = StateFile(tmp_path, "audio.json", Volume, fallback="audio.volume")
    stale, young, other = (
        tmp_path / ".audio.json.k1ll3d_1",
        tmp_path / ".audio.json.inflight",
        tmp_path / ".audio.json.not-ours",
    )
    for path in (stale, young, other):
        path.write_bytes(b'{"vol')
    os.utime(stale, (time.time() - 120, time.time() - 120))  # left by a write long ago
    os.utime(other, (time.time() - 120, time.time() - 120))
    setting.write(Volume(volume=10, muted=False))
    assert not stale.exists()
    assert young.exists()  # may be another write's, still in progress
    assert other.exists()  # not a name write_atomically makes
    assert setting.read() == Volume(volume=10, muted=False)
