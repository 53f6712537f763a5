"""POST /api/chat against a real little gateway on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import free_port

FAST = {"requests_per_s": 10_000, "request_burst": 10_000}


@pytest.fixture
async def gateway(aiohttp_server: Any) -> Any:
    """A stand-in OpenClaw gateway: records what it got, answers per message."""
    received: list[tuple[dict[str, Any], str | None]] = []

    async def message(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        received.append((body, request.headers.get("Authorization")))
        text = body["message"]
        if text == "slow":
            await asyncio.sleep(2)
        if text == "html":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if text == "fail":
            return web.json_response({"error": "agent crashed"}, status=500)
        return web.json_response({"reply": f"echo: {text}", "queued": True})

    app = web.Application()
    app.router.add_post("/api/message", message)
    server = await aiohttp_server(app)
    server.received = received
    return server


async def chat_client(faced_client: Any, gateway: Any, **openclaw: Any) -> Any:
    settings = {
        "gateway_url": str(gateway.make_url("/")),
        "gateway_token": "gw-secret",
        "session_key": "agent:test",
        "timeout_s": 0.5,
        **openclaw,
    }
    return await faced_client(limits={**FAST, "chat_max_chars": 50}, openclaw=settings)


async def test_chat_is_forwarded_and_the_answer_returned(faced_client: Any, gateway: Any) -> None:
    client = await chat_client(faced_client, gateway)
    response = await client.post("/api/chat", json={"message": "hello face"})
    assert response.status == 200
    assert await response.json() == {"reply": "echo: hello face", "queued": True}
    assert gateway.received == [
        ({"message": "hello face", "sessionKey": "agent:test"}, "Bearer gw-secret")
    ]


async def test_chat_without_a_gateway_is_503(faced_client: Any) -> None:
    client = await faced_client(limits=FAST)
    response = await client.post("/api/chat", json={"message": "hi"})
    assert response.status == 503
    assert "gateway_url" in (await response.json())["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({}, 400, "missing field 'message'"),
        ({"message": ""}, 400, "invalid value for 'message': ''; expected a non-blank string"),
        ({"message": " \n"}, 400, "expected a non-blank string"),
        ({"message": 42}, 400, "'message'"),
        ({"message": "x" * 51}, 413, "too long: 51 characters, limit 50"),
    ],
)
async def test_bad_chat_requests(
    faced_client: Any, gateway: Any, body: dict[str, Any], status: int, words: str
) -> None:
    client = await chat_client(faced_client, gateway)
    response = await client.post("/api/chat", json=body)
    assert response.status == status
    assert words in (await response.json())["error"]
    assert gateway.received == []


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("slow", "did not answer within 0.5 s"),
        ("html", "something other than JSON"),
        ("fail", "gateway answered 500"),
    ],
)
async def test_gateway_trouble_is_502(
    faced_client: Any, gateway: Any, message: str, words: str
) -> None:
    client = await chat_client(faced_client, gateway)
    response = await client.post("/api/chat", json={"message": message})
    assert response.status == 502
    assert words in (await response.json())["error"]


async def test_gateway_down_is_502(faced_client: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = await faced_client(limits=FAST, openclaw={"gateway_url": url, "timeout_s": 2})
    response = await client.post("/api/chat", json={"message": "anyone?"})
    assert response.status == 502
    assert "unreachable" in (await response.json())["error"]
