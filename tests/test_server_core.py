"""The daemon core over real HTTP: middlewares, auth, rate limit, errors, headers, health."""

from __future__ import annotations


async def test_health_is_public_json_with_version_uptime_and_components(faced_client) -> None:
    client = await faced_client(auth={"api_key": "secret"})
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["ok"] is True
    assert body["version"]
    assert body["uptime_s"] >= 0
    assert body["components"]["camera"]["status"] == "off"
    response = await client.get("/api/health")
    assert (await response.json())["ok"] is True
