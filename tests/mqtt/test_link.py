"""faced's MQTT link against a real Mosquitto, with a client playing Home Assistant.

Discovery configs checked against Home Assistant's rules (tests/mqtt/ha_rules.py), states
published on change, commands round-tripping to the REST API's answers (same validation,
same rate limit), the last will after ``kill -9`` of a real ``faced serve``, reconnecting
after the broker restarts, and three boxes on one broker with a group topic.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from faced.keys import MQTT_KEY
from faced.mqtt.discovery import ENTITIES
from faced.vision.synthetic import Motion, write_clip
from tests import data
from tests.conftest import free_port
from tests.helpers import until
from tests.mqtt import ha_rules

pytestmark = pytest.mark.slow

STILL = Motion(drift=(0.0, 0.0), zoom=0.0, tilt_degrees=0.0, fill=0.9)


def _configs(ha: Any, node: str) -> dict[str, dict[str, Any]]:
    return {
        topic: json.loads(payload)
        for topic, payload in ha.seen.items()
        if topic.startswith("homeassistant/") and f"/{node}/" in topic and payload
    }


async def _box(faced_client: Any, broker: Any, node: str, **sections: Any) -> Any:
    mqtt = {"url": broker.url, "node_id": node, "min_interval_s": 0, "poll_s": 0.2}
    return await faced_client(mqtt={**mqtt, **sections.pop("mqtt", {})}, **sections)


async def test_discovery_follows_home_assistants_rules(broker, home_assistant, faced_client):
    ha = await home_assistant()
    client = await _box(faced_client, broker, "kiosk-1", mqtt={"name": "Shop window"})
    await until(lambda: len(_configs(ha, "kiosk-1")) == len(ENTITIES), what="every config")
    configs = _configs(ha, "kiosk-1")
    problems = [p for topic, payload in configs.items() for p in ha_rules.check(topic, payload)]
    assert problems == []
    unique = {payload["unique_id"] for payload in configs.values()}
    assert len(unique) == len(ENTITIES)
    devices = {json.dumps(payload["device"], sort_keys=True) for payload in configs.values()}
    assert len(devices) == 1  # one device block
    device = configs["homeassistant/binary_sensor/kiosk-1/presence/config"]["device"]
    assert device["name"] == "Shop window"
    assert device["configuration_url"].endswith("/dashboard")
    presence = configs["homeassistant/binary_sensor/kiosk-1/presence/config"]
    assert presence["device_class"] == "occupancy"
    assert presence["default_entity_id"] == "binary_sensor.faced_kiosk_1_presence"
    state = configs["homeassistant/select/kiosk-1/state/config"]
    assert len(state["options"]) == 11
    assert len(configs["homeassistant/select/kiosk-1/emotion/config"]["options"]) == 13
    packs = (await (await client.get("/api/v1/presets")).json())["presets"]
    face = configs["homeassistant/select/kiosk-1/face/config"]
    assert face["options"] == [p["slug"] for p in packs]
    assert configs["homeassistant/sensor/kiosk-1/fps/config"]["entity_category"] == "diagnostic"
    # Availability and the first states, retained.
    await until(lambda: ha.text("faced/kiosk-1/availability") == "online", what="online")
    await until(lambda: ha.text("faced/kiosk-1/state") == "idle", what="the state")
    assert ha.text("faced/kiosk-1/presence") == "OFF"
    assert ha.text("faced/kiosk-1/health") == "ok"
    assert not any(
        word in topic for topic, _ in ha.log for word in ("blendshape", "image", "landmark")
    )
    health = await (await client.get("/health")).json()
    mqtt = health["components"]["mqtt"]
    assert mqtt["status"] == "ok" and mqtt["connected"] and mqtt["node_id"] == "kiosk-1"

    # Home Assistant restarts: it says online, and gets every config again.
    def announced() -> int:
        return sum(1 for topic, _ in ha.log if topic.endswith("/config"))

    before = announced()
    await ha.publish("homeassistant/status", "online")
    await until(lambda: announced() >= before + len(ENTITIES), what="the configs again")

    # A clean stop says offline (a clean disconnect sends no last will).
    await client.close()
    await until(lambda: ha.text("faced/kiosk-1/availability") == "offline", what="offline")


async def test_commands_change_the_box_as_the_rest_api_does(broker, home_assistant, faced_client):
    ha = await home_assistant()
    client = await _box(faced_client, broker, "box")
    await until(lambda: ha.text("faced/box/availability") == "online", what="online")

    async def state() -> dict[str, Any]:
        return await (await client.get("/api/state")).json()

    await ha.publish("faced/box/state/set", "thinking")
    await until(lambda: _is(state, "state", "thinking"), what="state thinking")
    await ha.publish("faced/box/emotion/set", "happy")
    await until(lambda: _is(state, "emotion", "happy"), what="emotion happy")
    await until(lambda: ha.text("faced/box/emotion") == "happy", what="the emotion published")

    # A refusal: nothing changes, the error topic gets the REST API's own sentence.
    await ha.publish("faced/box/emotion/set", "grumpy")
    await until(lambda: "faced/box/error" in ha.seen, what="the error")
    error = json.loads(ha.seen["faced/box/error"])
    rest = await client.post("/api/state", json={"emotion": "grumpy"})
    assert rest.status == 400 == error["status"]
    assert error["error"] == (await rest.json())["error"]
    assert error["entity"] == "emotion"
    assert (await state())["emotion"] == "happy"

    # A whole POST /api/state body works as the state command too.
    await ha.publish("faced/box/state/set", json.dumps({"state": "alert", "color": "#ff0000"}))
    await until(lambda: _is(state, "color", "#ff0000"), what="the body applied")

    # Reset, say, volume, face pack, display: each as its route.
    await ha.publish("faced/box/reset/set", "PRESS")
    await until(lambda: _is(state, "state", "idle"), what="reset")
    await ha.publish("faced/box/say/set", "hello there")
    await until(lambda: _is(state, "state", "speaking"), what="speaking")
    history = await (await client.get("/api/history")).json()
    texts = [e["data"].get("text") for e in history["entries"] if e["type"] == "text"]
    assert texts[-1] == "hello there"
    await ha.publish("faced/box/volume/set", "35")
    await until(lambda: _json_is(client, "/api/audio/volume", "volume", 35), what="volume")
    await until(lambda: ha.text("faced/box/volume") == "35", what="the volume published")
    packs = [p["slug"] for p in (await (await client.get("/api/v1/presets")).json())["presets"]]
    other = next(slug for slug in packs if slug != "default")
    await ha.publish("faced/box/face/set", other)
    await until(lambda: _json_is(client, "/api/config", "face", other), what="face pack")
    await ha.publish("faced/box/display/set", "OFF")
    await until(lambda: _json_is(client, "/api/display", "power", False), what="display off")
    await until(lambda: ha.text("faced/box/display") == "OFF", what="the display published")
    await ha.publish("faced/box/brightness/set", "40")
    await until(lambda: _json_is(client, "/api/display", "brightness", 40), what="brightness")

    # A REST change reaches Home Assistant: state published on change.
    await client.post("/api/state", json={"emotion": "proud"})
    await until(lambda: ha.text("faced/box/emotion") == "proud", what="REST change published")
    health = await (await client.get("/health")).json()
    assert health["components"]["mqtt"]["refused"] == 1


async def test_commands_share_the_rest_rate_limit(broker, home_assistant, faced_client):
    ha = await home_assistant()
    limits = {"requests_per_s": 0.01, "request_burst": 2}
    client = await _box(faced_client, broker, "box", limits=limits)
    await until(lambda: ha.text("faced/box/availability") == "online", what="online")
    for emotion in ("happy", "sad", "proud"):
        await ha.publish("faced/box/emotion/set", emotion)
    await until(lambda: "faced/box/error" in ha.seen, what="the refusal")
    error = json.loads(ha.seen["faced/box/error"])
    assert error["status"] == 429
    assert (await (await client.get("/api/state")).json())["emotion"] == "sad"


async def test_bad_commands_are_refused_and_harmless(broker, home_assistant, faced_client):
    ha = await home_assistant()
    client = await _box(faced_client, broker, "box")
    await until(lambda: ha.text("faced/box/availability") == "online", what="online")
    cases = [
        ("volume", "loud"),
        ("volume", "101"),
        ("volume", "4.5"),
        ("display", "MAYBE"),
        ("face", "no-such-pack"),
        ("say", "x" * 5000),
        ("state", b"\xff\xfe"),
        ("say", "   "),
        ("state", "{not json"),
    ]
    for entity, payload in cases:
        await ha.publish(f"faced/box/{entity}/set", payload)
    errors = lambda: [json.loads(p) for t, p in ha.log if t == "faced/box/error"]  # noqa: E731
    await until(lambda: len(errors()) == len(cases), what="every refusal")
    assert [e["entity"] for e in errors()] == [entity for entity, _ in cases]
    assert all(e["status"] in (400, 413) for e in errors()), errors()
    await ha.publish("faced/box/nonsense/set", "1")  # not an entity: ignored
    await ha.publish("faced/box/state/set", "idle")
    health = await (await client.get("/health")).json()
    assert health["status"] == "ok"


async def _is(state: Any, key: str, value: Any) -> bool:
    return (await state()).get(key) == value


async def _json_is(client: Any, path: str, key: str, value: Any) -> bool:
    response = await client.get(path)
    return (await response.json()).get(key) == value


async def test_three_daemons_one_broker_and_the_group_topic(broker, home_assistant, run_faced):
    ha = await home_assistant()
    boxes = {}
    for node in ("a", "b", "c"):
        config = f'[mqtt]\nurl = "{broker.url}"\nnode_id = "{node}"\nmin_interval_s = 0\n'
        boxes[node] = await run_faced(config_text=config)
    for node in boxes:
        await until(lambda n=node: ha.text(f"faced/{n}/availability") == "online", what=node)

    async def states(key: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            answers = {}
            for node, box in boxes.items():
                async with session.get(f"{box.url}/api/state") as response:
                    answers[node] = (await response.json())[key]
            return answers

    await ha.publish("faced/b/state/set", "thinking")
    await until(lambda: ha.text("faced/b/state") == "thinking", what="b thinking")
    assert await states("state") == {"a": "idle", "b": "thinking", "c": "idle"}

    await ha.publish("faced/all/emotion/set", "excited")
    for node in boxes:
        await until(lambda n=node: ha.text(f"faced/{n}/emotion") == "excited", what=node)
    assert await states("emotion") == {"a": "excited", "b": "excited", "c": "excited"}
    assert await states("state") == {"a": "idle", "b": "thinking", "c": "idle"}
    # Three devices, each with its own entities.
    ids = {json.loads(p)["unique_id"] for t, p in ha.seen.items() if t.endswith("/config")}
    assert len(ids) == 3 * len(ENTITIES)


async def test_reconnects_after_the_broker_restarts(broker, home_assistant, faced_client):
    client = await _box(faced_client, broker, "box")
    service = client.app[MQTT_KEY]
    await until(lambda: service.connected, what="connected")
    await broker.stop()
    await until(lambda: not service.connected, what="disconnected")

    async def degraded() -> bool:
        body = await (await client.get("/health")).json()
        return body["components"]["mqtt"]["status"] == "error"

    await until(degraded, what="/health shows the lost broker")
    # The daemon serves meanwhile, and its writes work.
    assert (await client.post("/api/state", json={"emotion": "sad"})).status == 200
    await broker.start()
    ha = await home_assistant()
    await until(lambda: service.connected, seconds=40, what="connected again")
    await until(lambda: ha.text("faced/box/availability") == "online", what="online again")
    await until(lambda: ha.text("faced/box/emotion") == "sad", what="the states again")
    await until(lambda: len(_configs(ha, "box")) == len(ENTITIES), what="the configs again")
    health = await (await client.get("/health")).json()
    assert health["components"]["mqtt"]["reconnects"] >= 1


async def test_last_will_after_kill_9(broker, home_assistant, run_faced):
    ha = await home_assistant()
    config = f'[mqtt]\nurl = "{broker.url}"\nnode_id = "doomed"\nkeepalive_s = 5\n'
    process = await run_faced(config_text=config)
    await until(lambda: ha.text("faced/doomed/availability") == "online", what="online")
    process.process.send_signal(signal.SIGKILL)
    await process.process.wait()
    await until(lambda: ha.text("faced/doomed/availability") == "offline", what="the last will")


async def test_sigterm_says_offline_and_exits_cleanly(broker, home_assistant, run_faced):
    ha = await home_assistant()
    process = await run_faced(config_text=f'[mqtt]\nurl = "{broker.url}"\nnode_id = "calm"\n')
    await until(lambda: ha.text("faced/calm/availability") == "online", what="online")
    process.terminate()
    assert await process.wait_exit() == 0
    await until(lambda: ha.text("faced/calm/availability") == "offline", what="offline")
    assert "did not finish in time" not in process.stderr


async def test_switching_mqtt_off_says_offline_and_on_connects_again(
    broker, home_assistant, faced_client, tmp_path
):
    ha = await home_assistant()
    state = {"server": {"state_dir": str(tmp_path / "state")}}
    client = await _box(faced_client, broker, "box", **state)
    service = client.app[MQTT_KEY]
    await until(lambda: ha.text("faced/box/availability") == "online", what="online")
    response = await client.post("/api/components/mqtt", json={"enabled": False})
    assert response.status == 200, await response.text()
    entry = await response.json()
    assert entry["enabled"] is False and entry["status"] == "off" and entry["toggle"]
    await until(lambda: ha.text("faced/box/availability") == "offline", what="offline")
    assert not service.connected
    # Off means off: a command is not heard, a change is not published.
    await ha.publish("faced/box/emotion/set", "happy")
    await client.post("/api/state", json={"state": "thinking"})
    await ha.publish("faced/box/availability", "probe")  # the broker round-trips to here
    await until(lambda: ha.text("faced/box/availability") == "probe", what="the probe")
    state_now = await (await client.get("/api/state")).json()
    assert state_now["emotion"] != "happy" and ha.text("faced/box/state") != "thinking"
    health = await (await client.get("/health")).json()
    assert health["components"]["mqtt"]["status"] == "off" and health["status"] == "ok"

    response = await client.post("/api/components/mqtt", json={"enabled": True})
    assert response.status == 200, await response.text()
    await until(lambda: service.connected, what="connected again")
    await until(lambda: ha.text("faced/box/availability") == "online", what="online again")
    await until(lambda: ha.text("faced/box/state") == "thinking", what="the states again")
    await ha.publish("faced/box/emotion/set", "proud")
    await until(lambda: ha.text("faced/box/emotion") == "proud", what="commands again")

    # Persisted: a daemon started on the same state directory keeps the link off.
    assert (await client.post("/api/components/mqtt", json={"enabled": False})).status == 200
    await until(lambda: ha.text("faced/box/availability") == "offline", what="offline")
    await client.close()
    client = await _box(faced_client, broker, "box", **state)
    listing = await (await client.get("/api/components")).json()
    (entry,) = [c for c in listing["components"] if c["name"] == "mqtt"]
    assert entry["enabled"] is False and entry["status"] == "off"
    assert not client.app[MQTT_KEY].connected
    assert ha.text("faced/box/availability") == "offline"


async def test_no_url_no_mqtt(faced_client):
    client = await faced_client()
    health = await (await client.get("/health")).json()
    assert health["components"]["mqtt"] == {"status": "off", "reason": "mqtt.url is not set"}
    assert health["status"] == "ok"
    response = await client.post("/api/components/mqtt", json={"enabled": True})
    assert response.status == 409
    assert (await response.json())["error"] == "mqtt cannot be switched now: mqtt.url is not set"


async def test_a_broker_that_is_not_there_does_not_stop_the_box(faced_client):
    url = f"mqtt://127.0.0.1:{free_port()}"  # nothing listens there
    client = await faced_client(mqtt={"url": url, "node_id": "alone"})

    async def failing() -> bool:
        body = await (await client.get("/health")).json()
        return body["components"]["mqtt"]["status"] == "error"

    await until(failing, what="the failure in /health")
    body = await (await client.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["components"]["mqtt"]["connected"] is False
    assert "error" in body["components"]["mqtt"]
    assert (await client.post("/api/state", json={"state": "thinking"})).status == 200


async def test_mqtts_verifies_the_brokers_certificate(tls_broker, faced_client):
    assert tls_broker.cert is not None
    mqtt = {"url": tls_broker.url, "node_id": "secure", "tls_ca_file": str(tls_broker.cert)}
    client = await faced_client(mqtt=mqtt)
    service = client.app[MQTT_KEY]
    await until(lambda: service.connected, what="connected over TLS")

    # Without the broker's CA the system's store refuses it: no link, the daemon serves on.
    other = await faced_client(mqtt={"url": tls_broker.url, "node_id": "unsure"})
    untrusted = other.app[MQTT_KEY]
    await until(lambda: untrusted.link.status == "error", what="the refusal")
    assert "certificate" in (untrusted.link.error or "").lower()
    assert not untrusted.connected


@pytest.fixture(scope="module")
def still_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real photograph looking at the camera, as a clip the file camera loops."""
    path = tmp_path_factory.mktemp("mqtt-clip") / "still.avi"
    return write_clip(data.load_rgb("tongue.jpg"), path, 30, motion=STILL)


async def test_presence_from_the_camera_reaches_home_assistant(
    broker, home_assistant, faced_client, still_clip
):
    clip = still_clip
    ha = await home_assistant()
    await _box(faced_client, broker, "seen", camera={"source": f"file:{clip}"})
    await until(lambda: ha.text("faced/seen/presence") == "ON", seconds=30, what="presence")
    await until(lambda: ha.text("faced/seen/people") == "1", what="one person")
    await until(lambda: ha.text("faced/seen/distance") not in (None, "None"), what="distance")
    assert 0.1 < float(ha.text("faced/seen/distance") or 0) < 5
    await until(lambda: float(ha.text("faced/seen/fps") or 0) > 0, what="fps")
    # Presence-level facts only: every state topic is an entity's, every payload short text.
    states = {t: p for t, p in ha.log if t.startswith("faced/seen/") and not t.endswith("/set")}
    keys = {t.removeprefix("faced/seen/") for t in states}
    assert keys <= {e.key for e in ENTITIES} | {"availability"}
    assert all(len(p) < 64 for _, p in ha.log if _.startswith("faced/seen/"))
