"""The system API on the real daemon: about, components and their switches, the settings'
persisted layer, restart.

The app on loopback (faced_client) for the routes; the real ``faced serve`` process
(run_faced) for what crosses a restart: the persisted layer read at start, the re-exec on
the same port, the exit for systemd.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp.test_utils import TestClient

from faced.components import NAMES
from faced.keys import SYSTEM_ROOT_KEY
from faced.schemas.system import About, Component, Components, ConfigReport, Restarting
from faced.system import EX_RESTART
from tests.helpers import until

Client = TestClient[Any, Any]
KEY = {"Authorization": "Bearer sesame"}


async def _client(
    faced_client: Callable[..., Awaitable[Client]], state: Path, **sections: Any
) -> Client:
    return await faced_client(
        auth={"api_key": "sesame"}, server={"state_dir": str(state)}, **sections
    )


async def test_every_route_needs_the_key(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    for method, path, body in [
        ("GET", "/api/about", None),
        ("GET", "/api/components", None),
        ("POST", "/api/components/speaker", {"enabled": False}),
        ("GET", "/api/system/config", None),
        ("PATCH", "/api/system/config", {"follow": {"mode": "off"}}),
        ("POST", "/api/system/restart", {"confirm": True}),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status == 401, (method, path)
        assert "error" in await response.json()
    assert not await asyncio.to_thread(lambda: list(tmp_path.iterdir()))  # nothing written


async def test_about_reads_the_board_and_temperature_from_the_host(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    root = tmp_path / "root"

    def make_tree() -> None:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
        (root / "etc").mkdir()
        (root / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
        for index, (kind, milli) in enumerate([("gpu-thermal", "39000"), ("cpu-thermal", "51540")]):
            zone = root / f"sys/class/thermal/thermal_zone{index}"
            zone.mkdir(parents=True)
            (zone / "type").write_text(kind + "\n")
            (zone / "temp").write_text(milli + "\n")

    await asyncio.to_thread(make_tree)
    client = await faced_client(
        auth={"api_key": "sesame"},
        server={"state_dir": str(tmp_path / "state")},
        prepare=lambda app: app.__setitem__(SYSTEM_ROOT_KEY, root),
    )
    response = await client.get("/api/about", headers=KEY)
    assert response.status == 200
    about = msgspec.json.decode(await response.read(), type=About)
    assert about.board == "Raspberry Pi 5 Model B Rev 1.0"
    assert about.os == "Debian GNU/Linux 12 (bookworm)"
    assert about.cpu_temperature_c == 51.5
    assert about.backend == "litert/fp32"
    assert about.version and about.python and about.hostname and about.uptime_s >= 0


async def test_about_on_a_machine_without_a_device_tree(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await faced_client(
        auth={"api_key": "sesame"},
        server={"state_dir": str(tmp_path / "state")},
        prepare=lambda app: app.__setitem__(SYSTEM_ROOT_KEY, tmp_path / "empty"),
    )
    about = msgspec.json.decode(await (await client.get("/api/about", headers=KEY)).read())
    assert about["board"] is None and about["cpu_temperature_c"] is None and about["os"] is None
    assert "api_key" not in json.dumps(about) and "sesame" not in json.dumps(about)


async def test_components_list_every_component_and_say_what_is_off(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    response = await client.get("/api/components", headers=KEY)
    assert response.status == 200
    listing = msgspec.json.decode(await response.read(), type=Components)
    entries = {c.name: c for c in listing.components}
    assert [c.name for c in listing.components[: len(NAMES)]] == list(NAMES)
    assert entries["camera"].status == "off" and not entries["camera"].enabled
    assert entries["tracking"].status == "off" and entries["tracking"].toggle
    assert entries["perception"].status == "off"
    assert entries["speaker"].enabled and entries["speaker"].toggle
    assert entries["display"].toggle and entries["display"].enabled  # display.policy true
    for other in ("mqtt", "mdns", "metrics"):  # "not part of this daemon" until built in
        assert entries[other].status in {"off", "ok", "error"}
    assert not entries["camera"].toggle


async def test_switching_the_speaker_mutes_it_and_it_stays_muted(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    response = await client.post("/api/components/speaker", json={"enabled": False}, headers=KEY)
    assert response.status == 200, await response.text()
    entry = msgspec.json.decode(await response.read(), type=Component)
    assert entry.name == "speaker" and entry.enabled is False
    volume = await (await client.get("/api/audio/volume", headers=KEY)).json()
    assert volume["muted"] is True
    await client.close()
    client = await _client(faced_client, tmp_path)  # the same state directory
    volume = await (await client.get("/api/audio/volume", headers=KEY)).json()
    assert volume["muted"] is True


async def test_switching_follow_and_the_display_policy_persists_them_as_settings(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path, follow={"mode": "mirror"})
    response = await client.post("/api/components/follow", json={"enabled": False}, headers=KEY)
    assert response.status == 200, await response.text()
    assert (await response.json())["enabled"] is False
    assert (await (await client.get("/api/follow", headers=KEY)).json())["mode"] == "off"
    response = await client.post("/api/components/display", json={"enabled": False}, headers=KEY)
    assert response.status == 200, await response.text()
    assert (await (await client.get("/api/display", headers=KEY)).json())["policy"] is None
    layer = json.loads(await asyncio.to_thread((tmp_path / "config.json").read_text))
    assert layer == {"follow": {"mode": "off"}, "display": {"policy": False}}

    # On again: the configured mode comes back, and the layer forgets the key.
    response = await client.post("/api/components/follow", json={"enabled": True}, headers=KEY)
    assert (await (await client.get("/api/follow", headers=KEY)).json())["mode"] == "mirror"
    response = await client.post("/api/components/display", json={"enabled": True}, headers=KEY)
    assert (await (await client.get("/api/display", headers=KEY)).json())["policy"] == "on"
    layer = json.loads(await asyncio.to_thread((tmp_path / "config.json").read_text))
    assert layer == {"display": {"policy": True}}


async def test_bad_switches_are_refused(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    cases = [
        ("/api/components/nothing", {"enabled": True}, 404),
        ("/api/components/camera", {"enabled": False}, 409),  # not switchable
        ("/api/components/tracking", {"enabled": True}, 409),  # no camera: never started
        ("/api/components/speaker", {"enabled": "yes"}, 400),
        ("/api/components/speaker", {"on": True}, 400),
    ]
    for path, body, status in cases:
        response = await client.post(path, json=body, headers=KEY)
        assert response.status == status, (path, body, await response.text())
        assert (await response.json())["error"]
    response = await client.post(
        "/api/components/speaker",
        data=b"{not json",
        headers={**KEY, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert not await asyncio.to_thread(lambda: list(tmp_path.iterdir()))


async def test_config_masks_secrets(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path, openclaw={"gateway_token": "hush"})
    response = await client.get("/api/system/config", headers=KEY)
    assert response.status == 200
    text = await response.text()
    assert "sesame" not in text and "hush" not in text
    report = msgspec.json.decode(text, type=ConfigReport)
    assert report.config["auth"]["api_key"] == "********"
    assert report.restart_required == [] and report.persisted == {}
    # The document sent back whole changes nothing, the masked secrets included.
    response = await client.patch("/api/system/config", json=report.config, headers=KEY)
    assert response.status == 200, await response.text()
    after = msgspec.json.decode(await response.read(), type=ConfigReport)
    assert after.restart_required == []
    assert "api_key" not in after.persisted.get("auth", {})


async def test_a_bad_value_names_the_key_and_changes_nothing(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"follow": {"mode": "sideways"}}, "follow.mode"),
        ({"vision": {"threads": 0}}, "vision.threads"),
        ({"camera": {"fps": "fast"}}, "camera.fps"),
        ({"camera": {"nope": 1}}, "camera.nope"),
        ({"display": {"idle_off_after_s": 10}}, "display.idle_off_after_s"),
        ({"camera": {"source": "floppy:"}}, "camera.source"),
        ({"server": {"state_dir": "/tmp/elsewhere"}}, "server.state_dir"),
        # A good value beside a bad one: the good one is not applied either.
        ({"follow": {"mode": "off"}, "vision": {"threads": -1}}, "vision.threads"),
    ]
    for patch, key in cases:
        response = await client.patch("/api/system/config", json=patch, headers=KEY)
        assert response.status == 400, (patch, await response.text())
        body = await response.json()
        assert body["field"] == key, body
        assert key in body["error"]
        assert "expected" in body or "state directory" in body["error"]
    for bad_body in (b"[1, 2]", b"not json", b'{"follow": 3}'):
        response = await client.patch(
            "/api/system/config",
            data=bad_body,
            headers={**KEY, "Content-Type": "application/json"},
        )
        assert response.status == 400, bad_body
    assert (await (await client.get("/api/follow", headers=KEY)).json())["mode"] == "follow"
    report = await (await client.get("/api/system/config", headers=KEY)).json()
    assert report["persisted"] == {} and report["restart_required"] == []
    assert not await asyncio.to_thread((tmp_path / "config.json").exists)


async def test_a_change_is_applied_live_or_listed_for_a_restart(
    faced_client: Callable[..., Awaitable[Client]], tmp_path: Path
) -> None:
    client = await _client(faced_client, tmp_path)
    patch = {"follow": {"mode": "mirror", "hold_s": 2}, "vision": {"threads": 2}}
    response = await client.patch("/api/system/config", json=patch, headers=KEY)
    assert response.status == 200, await response.text()
    report = msgspec.json.decode(await response.read(), type=ConfigReport)
    assert report.applied == ["follow.mode", "follow.hold_s"]
    assert report.restart_required == ["vision.threads"]
    assert report.config["vision"]["threads"] == 2
    assert report.persisted == {"follow": {"mode": "mirror", "hold_s": 2}, "vision": {"threads": 2}}
    follow = await (await client.get("/api/follow", headers=KEY)).json()
    assert follow["mode"] == "mirror" and follow["hold_s"] == 2
    # null takes a key out of the layer: back to the file's value, nothing to restart.
    response = await client.patch(
        "/api/system/config", json={"vision": {"threads": None}}, headers=KEY
    )
    report = msgspec.json.decode(await response.read(), type=ConfigReport)
    assert report.restart_required == [] and "vision" not in report.persisted
    layer = json.loads(await asyncio.to_thread((tmp_path / "config.json").read_text))
    assert layer == {"follow": {"mode": "mirror", "hold_s": 2}}


async def test_the_layer_survives_a_restart_between_the_file_and_the_flags(
    run_faced: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    config_text = (
        f'[server]\nstate_dir = "{state}"\n[vision]\nthreads = 1\n[face]\nhistory_size = 50\n'
    )
    env = {"FACE_API_KEY": "sesame"}
    faced = await run_faced(config_text=config_text, env=env)
    async with aiohttp.ClientSession(headers=KEY) as session:
        patch = {"vision": {"threads": 3}, "server": {"port": 1}, "follow": {"mode": "off"}}
        async with session.patch(f"{faced.url}/api/system/config", json=patch) as response:
            assert response.status == 200, await response.text()
            report = await response.json()
        # --port (a flag) is above the layer: the effective port stays the flag's.
        assert report["config"]["server"]["port"] == faced.port
        assert report["restart_required"] == ["vision.threads"]
        faced.terminate()
        assert await faced.wait_exit() == 0

        again = await run_faced(config_text=config_text, env=env)
        async with session.get(f"{again.url}/api/system/config") as response:
            report = await response.json()
        assert report["config"]["vision"]["threads"] == 3  # the layer beats the file
        assert report["config"]["face"]["history_size"] == 50  # the file's own keys stay
        assert report["restart_required"] == []
        async with session.get(f"{again.url}/api/follow") as response:
            assert (await response.json())["mode"] == "off"


async def test_a_broken_layer_does_not_stop_the_box(
    run_faced: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await asyncio.to_thread(state.mkdir)
    await asyncio.to_thread((state / "config.json").write_text, '{"vision": {"threads": "many"}}')
    faced = await run_faced(config_text=f'[server]\nstate_dir = "{state}"\n')
    assert "ignoring the persisted settings" in faced.stderr
    assert "vision.threads" in faced.stderr


async def test_restart_needs_confirm_then_comes_back_on_the_same_port(
    run_faced: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    faced = await run_faced(
        config_text=f'[server]\nstate_dir = "{state}"\n',
        env={"FACE_API_KEY": "sesame", "INVOCATION_ID": ""},
    )
    async with aiohttp.ClientSession(headers=KEY) as session:
        async with session.get(f"{faced.url}/api/about") as response:
            before = await response.json()
        for body in ({}, {"confirm": False}, {"confirm": "yes"}):
            async with session.post(f"{faced.url}/api/system/restart", json=body) as response:
                assert response.status == 400, body
        # started_at has a resolution of a second and the daemon is back within half of
        # one: a restart in the second it started would look like no restart at all.
        await asyncio.sleep(1.1)
        async with session.post(
            f"{faced.url}/api/system/restart", json={"confirm": True}
        ) as response:
            assert response.status == 202
            answer = msgspec.json.decode(await response.read(), type=Restarting)
        assert answer.how == "exec"

        async def restarted() -> bool:
            try:
                async with session.get(f"{faced.url}/api/about") as response:
                    about = await response.json()
            except aiohttp.ClientConnectionError:
                return False
            return bool(
                about["started_at"] != before["started_at"]
                or about["uptime_s"] < before["uptime_s"]
            )

        await until(restarted, 30, what="the daemon back after the restart")
        assert faced.process.returncode is None  # the same process, executed again
        async with session.get(f"{faced.url}/api/about") as response:
            assert (await response.json())["pid"] == before["pid"]


async def test_restart_under_systemd_exits_for_restart(
    run_faced: Callable[..., Awaitable[Any]], tmp_path: Path
) -> None:
    faced = await run_faced(
        config_text=f'[server]\nstate_dir = "{tmp_path / "state"}"\n',
        env={"INVOCATION_ID": "0123456789abcdef"},
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{faced.url}/api/system/restart", json={"confirm": True}) as response,
    ):
        assert response.status == 202
        assert (await response.json())["how"] == "systemd"
    assert await faced.wait_exit() == EX_RESTART
