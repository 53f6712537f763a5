"""The typed config: layers, precedence, one-line errors, and the `faced config` command."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec.inspect
import pytest

from faced import config
from faced.cli import main
from faced.config import EX_CONFIG, ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faced.toml"
    path.write_text(text)
    return path


def test_defaults_serve_open_face_on_9999_for_the_whole_lan() -> None:
    effective = config.load(None, environ={})
    assert (effective.server.host, effective.server.port) == ("0.0.0.0", 9999)
    assert effective.auth.api_key is None
    assert effective.openclaw.session_key == "agent:main"
    assert effective.camera.source == "none"


def test_layers_defaults_file_environment_flags(tmp_path: Path) -> None:
    path = _write(tmp_path, '[server]\nport = 8000\nhost = "127.0.0.1"\n[auth]\napi_key = "f"\n')
    from_file = config.load(path, environ={})
    assert (from_file.server.port, from_file.server.host, from_file.auth.api_key) == (
        8000,
        "127.0.0.1",
        "f",
    )
    environ = {"PORT": "8100", "FACE_API_KEY": "e", "OPENCLAW_GATEWAY_URL": "http://gw:1"}
    from_env = config.load(path, environ=environ)
    assert (from_env.server.port, from_env.auth.api_key) == (8100, "e")
    assert from_env.server.host == "127.0.0.1"  # the file still counts where env is silent
    assert from_env.openclaw.gateway_url == "http://gw:1"
    from_flags = config.load(path, environ=environ, overrides={"server": {"port": "8200"}})
    assert from_flags.server.port == 8200
    assert from_flags.auth.api_key == "e"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\nbogus = 1\n", "unknown key server.bogus: not a faced setting"),
        ("[nope]\n", "unknown key nope: not a faced setting"),
        ('[server]\nport = "x"\n', "server.port = 'x': Expected `int`"),
        ("[server]\nport = 70000\n", "server.port = 70000: Expected `int` <= 65535"),
        ("[limits]\nrequests_per_s = 0\n", "limits.requests_per_s = 0: Expected `float` > 0"),
        (
            '[logging]\nlevel = "loud"\n',
            "logging.level = 'loud': expected one of debug, error, info, warning",
        ),
        (
            '[server]\ntrusted_proxies = ["10.0.0.1", "proxy.lan"]\n',
            "server.trusted_proxies[1] = 'proxy.lan': expected an IP address or CIDR network",
        ),
        ("[server\n", "invalid TOML"),
    ],
)
def test_bad_values_name_key_value_and_expectation(tmp_path, text, expected) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ={})
    message = str(caught.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_bad_environment_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.port = 'nine'"):
        config.load(None, environ={"PORT": "nine"})


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "faced.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError) as caught:
        config.load(path, environ={})
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_config_check_ok_and_error(tmp_path: Path, capsys) -> None:
    good = _write(tmp_path, "[server]\nport = 8000\n")
    assert main(["config", "check", str(good)]) == 0
    assert capsys.readouterr().out.strip() == f"ok: {good}"
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nmax_viewers = -1\n")
    assert main(["config", "check", str(bad)]) == EX_CONFIG
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert "limits.max_viewers = -1" in line


def test_config_check_refuses_a_camera_source_it_cannot_parse(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, '[camera]\nsource = "v4l2:video0"\n')
    assert main(["config", "check", str(path)]) == EX_CONFIG
    assert "camera.source = 'v4l2:video0': v4l2: needs a device path" in capsys.readouterr().err


def test_config_show_masks_secrets_and_round_trips_as_toml(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("FACE_API_KEY", "top-secret")
    monkeypatch.setenv("OPENCLAW_GATEWAY_TOKEN", "also-secret")
    path = _write(tmp_path, '[server]\nport = 8001\ntrusted_proxies = ["10.0.0.0/8"]\n')
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "secret" not in out
    shown = tomllib.loads(out)
    assert shown["server"]["port"] == 8001
    assert shown["server"]["trusted_proxies"] == ["10.0.0.0/8"]
    assert shown["auth"]["api_key"] == "********"
    assert "# gateway_url = (unset)" in out
    assert main(["config", "show", "--config", str(path), "--format", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["openclaw"]["gateway_token"] == "********"
    assert as_json["openclaw"]["session_key"] == "agent:main"


def test_serve_flags_with_bad_values_exit_78_with_one_line(capsys) -> None:
    assert main(["serve", "--port", "0", "--camera", "none"]) == EX_CONFIG
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("faced serve: ") and "server.port = '0'" in line
    assert main(["serve", "--camera", "webcam"]) == EX_CONFIG
    [line] = capsys.readouterr().err.splitlines()
    assert "camera.source = 'webcam': unknown camera source" in line


def test_docs_document_every_key_and_environment_variable() -> None:
    readme = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    sections = msgspec.inspect.type_info(config.Config).fields
    missing = [
        f"{section.name}.{field.name}"
        for section in sections
        for field in msgspec.inspect.type_info(section.type.cls).fields
        if f"`{section.name}.{field.name}`" not in readme
    ]
    missing += [f"env {name}" for name in config.ENVIRONMENT if f"`{name}`" not in readme]
    assert not missing, f"docs/configuration.md's configuration tables lack {missing}"
