"""The API key through systemd's credentials (LoadCredential=api-key:/etc/faced/api-key).

systemd copies the key into a private directory named by
$CREDENTIALS_DIRECTORY; these tests build that directory themselves (the OS boundary) and
check the real config loader and the real daemon.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from faced import config
from faced.config import ConfigError


def _credentials(tmp_path: Path, key: bytes | None) -> dict[str, str]:
    directory = tmp_path / "credentials"
    directory.mkdir()
    if key is not None:
        (directory / "api-key").write_bytes(key)
    return {"CREDENTIALS_DIRECTORY": str(directory)}


def _empty_toml(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "faced.toml"
    path.write_text(text)
    return path


def test_credential_sets_the_api_key(tmp_path: Path) -> None:
    environ = _credentials(tmp_path, b"s3cret-key\n")
    loaded = config.load(_empty_toml(tmp_path), environ=environ)
    assert loaded.auth.api_key == "s3cret-key"


def test_no_credentials_directory_leaves_the_key_unset(tmp_path: Path) -> None:
    assert config.load(_empty_toml(tmp_path), environ={}).auth.api_key is None


def test_directory_without_the_credential_leaves_the_key_unset(tmp_path: Path) -> None:
    environ = _credentials(tmp_path, None)
    assert config.load(_empty_toml(tmp_path), environ=environ).auth.api_key is None


def test_file_and_environment_win_over_the_credential(tmp_path: Path) -> None:
    environ = _credentials(tmp_path, b"from-credential")
    toml = _empty_toml(tmp_path, '[auth]\napi_key = "from-file"\n')
    assert config.load(toml, environ=environ).auth.api_key == "from-file"
    environ["FACE_API_KEY"] = "from-env"
    assert config.load(toml, environ=environ).auth.api_key == "from-env"


def test_empty_credential_is_a_clear_error(tmp_path: Path) -> None:
    environ = _credentials(tmp_path, b"  \n")
    with pytest.raises(ConfigError, match=r"credential .*api-key: empty, expected the API key"):
        config.load(_empty_toml(tmp_path), environ=environ)


def test_binary_credential_is_a_clear_error(tmp_path: Path) -> None:
    environ = _credentials(tmp_path, b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match=r"credential .*api-key: unreadable \(not UTF-8 text\)"):
        config.load(_empty_toml(tmp_path), environ=environ)


def test_config_check_exits_78_on_an_empty_credential(tmp_path: Path) -> None:
    environ = {**os.environ, **_credentials(tmp_path, b"")}
    toml = _empty_toml(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-m", "faced", "config", "check", str(toml)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == config.EX_CONFIG, completed.stderr
    assert "api-key: empty" in completed.stderr


@pytest.mark.slow
async def test_daemon_started_with_the_credential_requires_the_key(
    tmp_path: Path, run_faced
) -> None:
    environ = await asyncio.to_thread(_credentials, tmp_path, b"k-from-systemd\n")
    faced = await run_faced(env=environ)
    async with aiohttp.ClientSession() as session, session.get(f"{faced.url}/health") as response:
        health = await response.json()
    assert health["components"]["api"]["auth"] is True
