"""[mqtt]: the url's check, the password from a systemd credential, node ids and topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from faced import config
from faced.config import ConfigError, validate
from faced.mqtt.discovery import Topics, sanitise


def test_password_comes_from_the_credential_and_the_file_wins(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    directory.mkdir()
    (directory / "mqtt-password").write_text("from-credential\n")
    toml = tmp_path / "faced.toml"
    toml.write_text('[mqtt]\nurl = "mqtt://broker"\n')
    environ = {"CREDENTIALS_DIRECTORY": str(directory)}
    loaded = config.load(toml, environ=environ)
    assert loaded.mqtt.password == "from-credential"
    assert loaded.auth.api_key is None
    assert config.to_dict(loaded)["mqtt"]["password"] == "********"
    toml.write_text('[mqtt]\nurl = "mqtt://broker"\npassword = "from-file"\n')
    assert config.load(toml, environ=environ).mqtt.password == "from-file"
    (directory / "mqtt-password").write_text("")
    with pytest.raises(ConfigError, match="mqtt-password: empty, expected the MQTT password"):
        config.load(toml, environ=environ)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "http://broker"}, "mqtt.url = 'http://broker': expected mqtt://HOST"),
        ({"url": "mqtt://"}, "mqtt.url = 'mqtt://'"),
        ({"url": "mqtt://h:99999"}, "mqtt.url = 'mqtt://h:99999'"),
        ({"url": "mqtt://h", "base_topic": "a/+/b"}, "mqtt.base_topic = 'a/+/b'"),
        ({"url": "mqtt://h", "group_topic": "all/"}, "mqtt.group_topic = 'all/'"),
        ({"node_id": "a b"}, "mqtt.node_id = 'a b'"),
        ({"keepalive_s": 1}, "mqtt.keepalive_s = 1"),
    ],
)
def test_bad_settings_name_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        validate({"mqtt": section})


def test_node_id_and_topics_default_from_the_host_name() -> None:
    assert sanitise("Kiosk-Front.local") == "kiosk-front"
    assert sanitise("box #3") == "box_3"
    assert sanitise("...") == "faced"
    topics = Topics.from_config(validate({"mqtt": {"url": "mqtts://h"}}), "Shop.Window")
    assert (topics.node_id, topics.base, topics.group) == ("shop", "faced/shop", "faced/all")
    assert topics.command_key("faced/shop/volume/set") == "volume"
    assert topics.command_key("faced/all/volume/set") == "volume"
    assert topics.command_key("faced/other/volume/set") is None
    assert topics.command_key("faced/shop/a/b/set") is None
