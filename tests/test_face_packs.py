"""GET /api/v1/presets, GET/PUT /api/config: listing, switching, auth, persistence, errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from faced.config import ConfigError
from faced.face_packs import FACES_DIR, scan_packs
from faced.keys import PRESETS_KEY

KEY = "presets-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def state_sections(tmp_path: Path) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}}


async def test_presets_lists_the_shipped_packs(faced_client: Any, state_sections: Any) -> None:
    client = await faced_client(**state_sections)
    response = await client.get("/api/v1/presets")
    assert response.status == 200
    presets = (await response.json())["presets"]
    slugs = [preset["slug"] for preset in presets]
    assert {"default", "orb", "terminal"} <= set(slugs)
    assert slugs == sorted(slugs)
    for index, preset in enumerate(presets, start=1):
        assert set(preset) == {"preset_id", "slug", "name", "has_cover"}
        assert preset["preset_id"] == index
        assert isinstance(preset["has_cover"], bool)
    names = {preset["slug"]: preset["name"] for preset in presets}
    assert names["orb"] == "Orb"  # from meta.name


async def test_every_shipped_pack_is_served_as_a_static_file(
    faced_client: Any, state_sections: Any
) -> None:
    client = await faced_client(**state_sections)
    presets = (await (await client.get("/api/v1/presets")).json())["presets"]
    for preset in presets:
        response = await client.get(f"/static/faces/{preset['slug']}.face.json")
        assert response.status == 200, preset
        document = json.loads(await response.read())
        assert document["meta"]["name"] == preset["name"]


async def test_config_defaults_to_the_configured_face(
    faced_client: Any, state_sections: Any
) -> None:
    client = await faced_client(face={"face": "orb"}, **state_sections)
    response = await client.get("/api/config")
    assert response.status == 200
    assert await response.json() == {"face": "orb"}


async def test_put_config_switches_persists_and_survives_a_restart(
    faced_client: Any, state_sections: Any, tmp_path: Path
) -> None:
    client = await faced_client(**state_sections)
    assert await (await client.get("/api/config")).json() == {"face": "default"}
    response = await client.put("/api/config", json={"face": "terminal"})
    assert response.status == 200
    assert await response.json() == {"face": "terminal"}
    assert await (await client.get("/api/config")).json() == {"face": "terminal"}
    saved = await asyncio.to_thread((tmp_path / "state" / "viewer.json").read_text)
    assert json.loads(saved) == {"face": "terminal"}

    restarted = await faced_client(**state_sections)
    assert await (await restarted.get("/api/config")).json() == {"face": "terminal"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"face": "no-such-face"}, "unknown face 'no-such-face'; allowed: default, orb, terminal"),
        ({"face": 3}, "Expected `str`"),
        ({}, "missing required field `face`"),
        ({"face": "orb", "volume": 3}, "unknown field `volume`"),
    ],
)
async def test_put_config_refuses_bad_bodies_and_keeps_the_face(
    faced_client: Any, state_sections: Any, body: Any, fragment: str
) -> None:
    client = await faced_client(**state_sections)
    response = await client.put("/api/config", json=body)
    assert response.status == 400
    error = (await response.json())["error"]
    assert fragment in error
    assert await (await client.get("/api/config")).json() == {"face": "default"}


async def test_put_config_refuses_bad_json(faced_client: Any, state_sections: Any) -> None:
    client = await faced_client(**state_sections)
    response = await client.put(
        "/api/config", data=b"{face", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]


async def test_config_write_needs_the_key_read_does_not(
    faced_client: Any, state_sections: Any
) -> None:
    client = await faced_client(auth={"api_key": KEY}, **state_sections)
    assert (await client.get("/api/config")).status == 200
    assert (await client.get("/api/v1/presets")).status == 200
    missing = await client.put("/api/config", json={"face": "orb"})
    assert missing.status == 401
    wrong = await client.put(
        "/api/config", json={"face": "orb"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status == 403
    assert await (await client.get("/api/config")).json() == {"face": "default"}
    ok = await client.put("/api/config", json={"face": "orb"}, headers=AUTH)
    assert ok.status == 200
    assert await (await client.get("/api/config")).json() == {"face": "orb"}


async def test_config_switch_reaches_viewer_sockets(faced_client: Any, state_sections: Any) -> None:
    client = await faced_client(**state_sections)
    async with client.ws_connect("/ws/viewer") as viewer:
        await client.put("/api/config", json={"face": "orb"})
        async with asyncio.timeout(5):
            while True:
                message = await viewer.receive_json()
                if message.get("type") == "config":
                    break
    assert message == {"type": "config", "face": "orb"}


async def test_unknown_persisted_face_falls_back_to_the_configured_one(
    faced_client: Any, state_sections: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await asyncio.to_thread(state.mkdir)
    await asyncio.to_thread((state / "viewer.json").write_text, '{"face": "gone"}')
    client = await faced_client(**state_sections)
    assert await (await client.get("/api/config")).json() == {"face": "default"}


async def test_corrupt_persisted_file_is_ignored(
    faced_client: Any, state_sections: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    await asyncio.to_thread(state.mkdir)
    await asyncio.to_thread((state / "viewer.json").write_bytes, b"\x00not json")
    client = await faced_client(**state_sections)
    assert await (await client.get("/api/config")).json() == {"face": "default"}


async def test_unknown_configured_face_stops_startup(make_config: Any, tmp_path: Path) -> None:
    from faced.app import create_app  # noqa: PLC0415

    app = create_app(make_config(face={"face": "nope"}, server={"state_dir": str(tmp_path)}))
    runner = web.AppRunner(app)
    with pytest.raises(ConfigError, match=r"face.face = 'nope': no such face pack; expected"):
        await runner.setup()
    await runner.cleanup()


def test_scan_skips_malformed_packs(tmp_path: Path) -> None:
    (tmp_path / "good.face.json").write_text('{"meta": {"name": "Good"}, "geometry": {}}')
    (tmp_path / "cover-less.face.json").write_text('{"meta": {}, "geometry": {}}')
    (tmp_path / "good.cover.svg").write_text("<svg/>")
    (tmp_path / "broken.face.json").write_text("{nope")
    (tmp_path / "list.face.json").write_text("[1, 2]")
    (tmp_path / "Bad Name.face.json").write_text('{"meta": {}, "geometry": {}}')
    presets = scan_packs(tmp_path)
    assert [(p.preset_id, p.slug, p.name, p.has_cover) for p in presets] == [
        (1, "cover-less", "cover-less", False),
        (2, "good", "Good", True),
    ]


def test_shipped_packs_are_all_valid() -> None:
    slugs = [preset.slug for preset in scan_packs(FACES_DIR)]
    shipped = sorted(path.name.removesuffix(".face.json") for path in FACES_DIR.glob("*.face.json"))
    assert slugs == shipped
    assert len(slugs) >= 3


async def test_presets_key_is_set(faced_client: Any, state_sections: Any) -> None:
    client = await faced_client(**state_sections)
    assert client.app[PRESETS_KEY].face == "default"


async def test_the_routes_are_in_the_openapi_document(
    faced_client: Any, state_sections: Any
) -> None:
    client = await faced_client(**state_sections)
    document = await (await client.get("/openapi.json")).json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/presets"]
    assert {"get", "put"} <= set(paths["/api/config"])
    schemas = json.dumps(document["components"]["schemas"])
    for name in ("PresetList", "Preset", "ViewerConfig", "ViewerConfigUpdate"):
        assert f'"{name}"' in schemas
