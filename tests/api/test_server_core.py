"""The daemon core over real HTTP: middlewares, auth, rate limit, errors, headers, health."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time

import msgspec
import pytest
from aiohttp import web

from faced.api.access import PUBLIC_PREFIXES, PUBLIC_ROUTES, Access
from faced.api.codec import MSGPACK_CONTENT_TYPE, read_body
from faced.api.errors import ApiError
from faced.api.ratelimit import ClientAddress, RateLimiter, parse_networks, rate_key
from faced.app import client_max_size, create_app
from faced.keys import ACCESS_KEY, CONFIG_KEY, HEALTH_KEY

KEY = "s3cret-key"
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Access-Control-Allow-Origin": "*",
}


class Echo(msgspec.Struct):
    text: str


async def _echo(request: web.Request) -> web.Response:
    body = await read_body(request, Echo)
    assert body is not None
    return web.json_response({"echo": body.text})


async def _raw_body(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals /etc/passwd")


async def _teapot(request: web.Request) -> web.Response:
    raise ApiError(418, "short and stout", headers={"X-Teapot": "1"}, extra={"field": "spout"})


async def _sleepy(request: web.Request) -> web.Response:
    time.sleep(0.001)  # noqa: ASYNC251  (the mistake the blockbuster fixture must catch)
    return web.json_response({"ok": True})


async def _read(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def add_test_routes(app: web.Application) -> None:
    """Routes that exist only in these tests, to exercise each middleware path."""
    app.router.add_post("/test/echo", _echo)
    app.router.add_post("/test/raw", _raw_body)
    app.router.add_put("/test/echo", _echo)
    app.router.add_get("/test/boom", _boom)
    app.router.add_post("/test/teapot", _teapot)
    app.router.add_get("/test/read", _read)
    app.router.add_get("/test/sleepy", _sleepy)
    app[ACCESS_KEY].private(app.router.add_get("/test/camera", _read))


# --- health -----------------------------------------------------------------------------


async def test_health_is_public_json_with_version_uptime_and_components(faced_client) -> None:
    client = await faced_client(auth={"api_key": KEY})
    response = await client.get("/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok"
    assert body["ok"] is True
    assert body["version"]
    assert body["uptime_s"] >= 0
    assert body["components"]["camera"] == {"status": "off", "source": "none"}
    assert body["components"]["api"]["auth"] is True
    response = await client.get("/api/health")
    assert response.status == 200
    assert (await response.json())["ok"] is True


async def test_health_merges_summaries_and_reports_failing_components(faced_client) -> None:
    def prepare(app: web.Application) -> None:
        health = app[HEALTH_KEY]
        health.add_summary(lambda: {"viewers": 3, "status": "hijacked"})
        health.add_component("speaker", lambda: {"status": "error", "error": "no device"})
        health.add_component("broken", lambda: {"status": str(1 / 0)})

    client = await faced_client(prepare=prepare)
    body = await (await client.get("/health")).json()
    assert body["viewers"] == 3
    assert body["status"] == "degraded"  # a summary cannot overwrite the core's keys
    assert body["ok"] is True
    assert body["components"]["speaker"] == {"status": "error", "error": "no device"}
    assert body["components"]["broken"]["status"] == "error"
    assert "division by zero" in body["components"]["broken"]["error"]


async def test_health_in_msgpack_when_accept_prefers_it(faced_client) -> None:
    client = await faced_client()
    response = await client.get("/health", headers={"Accept": MSGPACK_CONTENT_TYPE})
    assert response.status == 200
    assert response.content_type == MSGPACK_CONTENT_TYPE
    body = msgspec.msgpack.decode(await response.read())
    assert body["status"] == "ok"
    assert body["components"]["camera"]["status"] == "off"
    quality = {"Accept": "application/msgpack;q=0.5, application/json"}
    response = await client.get("/health", headers=quality)
    assert response.content_type == "application/json"


async def test_errors_follow_accept_too(faced_client) -> None:
    client = await faced_client()
    response = await client.get("/missing", headers={"Accept": "application/x-msgpack"})
    assert response.status == 404
    assert msgspec.msgpack.decode(await response.read()) == {"error": "not found: GET /missing"}


# --- pages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/", "text/html"), ("/dashboard", "text/html"), ("/static/placeholder.css", "text/css")],
)
async def test_pages_and_static_files_are_public(faced_client, path, content_type) -> None:
    client = await faced_client(auth={"api_key": KEY})
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_static_files_do_not_escape_their_directory(faced_client) -> None:
    client = await faced_client()
    paths = ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py")
    for path in (*paths, "/static/missing.js", "/static/.hidden"):
        response = await client.get(path)
        assert response.status in (403, 404), path
        assert "error" in await response.json()


# --- errors -----------------------------------------------------------------------------


async def test_unknown_path_is_json_404(faced_client) -> None:
    client = await faced_client()
    response = await client.post("/api/nowhere", json={})
    assert response.status == 404
    assert await response.json() == {"error": "not found: POST /api/nowhere"}
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


async def test_wrong_method_is_json_405_with_allow(faced_client) -> None:
    client = await faced_client()
    response = await client.delete("/health")
    assert response.status == 405
    body = await response.json()
    assert body["error"].startswith("method DELETE not allowed on /health")
    assert "GET" in response.headers["Allow"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_unexpected_exception_is_500_without_traceback_and_logged(
    faced_client, caplog
) -> None:
    client = await faced_client(prepare=add_test_routes)
    with caplog.at_level(logging.ERROR, logger="faced.api.middlewares"):
        response = await client.get("/test/boom", headers={"X-Request-ID": "req-42"})
    assert response.status == 500
    body = await response.json()
    assert body == {"error": "internal error", "request_id": "req-42"}
    assert "passwd" not in await response.text()
    assert response.headers["X-Request-ID"] == "req-42"
    [record] = [r for r in caplog.records if r.name == "faced.api.middlewares"]
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])
    # the process goes on serving
    assert (await client.get("/health")).status == 200


async def test_a_handler_that_blocks_the_loop_fails_loudly(faced_client, caplog) -> None:
    client = await faced_client(prepare=add_test_routes)
    with caplog.at_level(logging.ERROR, logger="faced.api.middlewares"):
        response = await client.get("/test/sleepy")
    assert response.status == 500
    [record] = [r for r in caplog.records if r.name == "faced.api.middlewares"]
    assert record.exc_info is not None
    assert type(record.exc_info[1]).__name__ == "BlockingError"


async def test_api_error_carries_status_headers_and_extra_fields(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes)
    response = await client.post("/test/teapot")
    assert response.status == 418
    assert response.headers["X-Teapot"] == "1"
    assert await response.json() == {"error": "short and stout", "field": "spout"}


async def test_bad_json_and_wrong_types_are_400_naming_the_problem(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes)
    response = await client.post("/test/echo", data=b"{not json", headers=_json)
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]
    response = await client.post("/test/echo", json={"text": 5})
    assert response.status == 400
    assert "$.text" in (await response.json())["error"]
    response = await client.post("/test/echo", data=b"", headers=_json)
    assert response.status == 400


async def test_a_body_arriving_in_slow_pieces_is_read_whole(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes)

    async def slow_link():
        yield b'{"text": "sl'
        await asyncio.sleep(0.05)
        yield b'ow"}'

    response = await client.post("/test/echo", data=slow_link(), headers=_json)
    assert response.status == 200, await response.text()
    assert await response.json() == {"echo": "slow"}


async def test_a_body_with_content_length_split_across_packets_is_read_whole(
    faced_client,
) -> None:
    # The codec takes what is buffered and waits only for the rest (not a chunked body).
    client = await faced_client(prepare=add_test_routes)
    body = b'{"text": "split"}'
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body[:7]
        )
        await writer.drain()
        await asyncio.sleep(0.1)  # time for the handler to start and find half a body
        writer.write(body[7:])
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert msgspec.json.decode(payload) == {"echo": "split"}


async def test_msgpack_request_body_is_decoded_like_json(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes)
    body = msgspec.msgpack.encode({"text": "hi"})
    response = await client.post(
        "/test/echo", data=body, headers={"Content-Type": "application/x-msgpack"}
    )
    assert response.status == 200
    assert await response.json() == {"echo": "hi"}


async def test_oversized_body_is_413(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, server={"max_body_bytes": 1000})
    big = b'{"text": "' + b"x" * 2000 + b'"}'
    response = await client.post("/test/echo", data=big, headers=_json)
    assert response.status == 413
    assert "too large" in (await response.json())["error"]
    # a chunked body (no Content-Length) is cut off at the limit too
    response = await client.post("/test/echo", data=_chunks(big), headers=_json)
    assert response.status == 413


async def test_client_max_size_admits_a_base64_audio_chunk_and_no_more(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, limits={"audio_max_bytes": 3000})
    limit = client_max_size(client.app[CONFIG_KEY])
    assert limit >= 4000  # base64 of 3000 raw bytes, plus the JSON around it
    # BytesIO: aiohttp's client warns about (and the suite fails on) raw bodies over 1 MiB
    response = await client.post("/test/raw", data=io.BytesIO(b"x" * limit))
    assert response.status == 200
    assert await response.json() == {"bytes": limit}
    response = await client.post("/test/raw", data=io.BytesIO(b"x" * (limit + 1)))
    assert response.status == 413
    assert "too large" in (await response.json())["error"]


# --- auth -------------------------------------------------------------------------------


async def test_writes_need_the_key_401_when_missing_403_when_wrong(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, auth={"api_key": KEY})
    response = await client.post("/test/echo", json={"text": "x"})
    assert response.status == 401
    assert "API key required" in (await response.json())["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["X-Frame-Options"] == "DENY"
    response = await client.post("/test/echo", json={"text": "x"}, headers=_bearer("nope"))
    assert response.status == 403
    assert await response.json() == {"error": "invalid API key"}
    response = await client.post(
        "/test/echo", json={"text": "x"}, headers={"Authorization": f"Basic {KEY}"}
    )
    assert response.status == 401  # only Bearer carries the key


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"Authorization": f"Bearer {KEY}"}, {}),
        ({"Authorization": f"bearer {KEY}"}, {}),
        ({"X-API-Key": KEY}, {}),
        ({}, {"token": KEY}),
        ({}, {"api_key": KEY}),
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key", "query-token", "query-api-key"],
)
async def test_each_way_of_presenting_the_key_works(faced_client, headers, params) -> None:
    client = await faced_client(prepare=add_test_routes, auth={"api_key": KEY})
    response = await client.post("/test/echo", json={"text": "x"}, headers=headers, params=params)
    assert response.status == 200
    assert await response.json() == {"echo": "x"}
    wrong = {k: v + "x" for k, v in headers.items()}, {k: v + "x" for k, v in params.items()}
    response = await client.post(
        "/test/echo", json={"text": "x"}, headers=wrong[0], params=wrong[1]
    )
    assert response.status == 403


async def test_reads_outside_the_public_list_need_the_key(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, auth={"api_key": KEY})
    assert (await client.get("/test/read")).status == 401
    assert (await client.get("/test/read", params={"token": KEY})).status == 200
    assert (await client.head("/health")).status == 200  # HEAD follows GET's public entry


async def test_without_a_key_writes_are_open(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes)
    response = await client.post("/test/echo", json={"text": "open"})
    assert response.status == 200


async def test_preflight_is_204_with_cors_and_needs_no_key(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, auth={"api_key": KEY})
    response = await client.options(
        "/test/echo",
        headers={
            "Origin": "http://agent.local",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Authorization",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, Authorization, X-API-Key"
    )
    assert response.headers["Access-Control-Max-Age"] == "600"


async def test_cors_origin_comes_from_the_config(faced_client) -> None:
    client = await faced_client(server={"cors_origin": "http://kiosk.local"})
    response = await client.get("/health")
    assert response.headers["Access-Control-Allow-Origin"] == "http://kiosk.local"


async def test_private_route_is_loopback_only_without_a_key(faced_client) -> None:
    # Trusting loopback as a proxy lets the test speak for a LAN client via X-Forwarded-For.
    client = await faced_client(prepare=add_test_routes, server={"trusted_proxies": ["127.0.0.1"]})
    assert (await client.get("/test/camera")).status == 200
    response = await client.get("/test/camera", headers={"X-Forwarded-For": "192.168.1.20"})
    assert response.status == 403
    assert "auth.api_key (FACE_API_KEY)" in (await response.json())["error"]
    # aiohttp answers HEAD through a route of its own: it must be exactly as private
    response = await client.head("/test/camera", headers={"X-Forwarded-For": "192.168.1.20"})
    assert response.status == 403
    # ordinary key-class routes stay open to the LAN when no key is set
    response = await client.get("/test/read", headers={"X-Forwarded-For": "192.168.1.20"})
    assert response.status == 200


async def test_private_route_needs_the_key_when_one_is_set(faced_client) -> None:
    client = await faced_client(prepare=add_test_routes, auth={"api_key": KEY})
    assert (await client.get("/test/camera")).status == 401
    assert (await client.head("/test/camera")).status == 401
    assert (await client.get("/test/camera", headers={"X-API-Key": KEY})).status == 200


def test_a_public_route_cannot_be_marked_private(make_config) -> None:
    app = create_app(make_config())
    route = next(r for r in app.router.routes() if r.resource and r.resource.canonical == "/health")
    with pytest.raises(ValueError, match="PUBLIC_ROUTES"):
        app[ACCESS_KEY].private(route)


# --- rate limit -------------------------------------------------------------------------


async def test_writes_beyond_the_burst_get_429_with_retry_after(faced_client) -> None:
    client = await faced_client(
        prepare=add_test_routes, limits={"requests_per_s": 0.5, "request_burst": 3}
    )
    for _ in range(3):
        assert (await client.post("/test/echo", json={"text": "x"})).status == 200
    response = await client.post("/test/echo", json={"text": "x"})
    assert response.status == 429
    body = await response.json()
    assert body["error"].startswith("rate limited")
    assert 0 < body["retry_after_s"] <= 2.0
    assert response.headers["Retry-After"] == "2"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # PUT counts as a write; reads are not limited
    assert (await client.put("/test/echo", json={"text": "x"})).status == 429
    assert (await client.get("/health")).status == 200
    health = await (await client.get("/health")).json()
    assert health["components"]["api"]["rate_limited"] == 2


async def test_rate_limit_runs_before_auth_so_key_guessing_is_throttled(faced_client) -> None:
    client = await faced_client(
        prepare=add_test_routes,
        auth={"api_key": KEY},
        limits={"requests_per_s": 0.5, "request_burst": 2},
    )
    statuses = [
        (await client.post("/test/echo", json={}, headers=_bearer(f"guess{i}"))).status
        for i in range(4)
    ]
    assert statuses == [403, 403, 429, 429]


async def test_forwarded_for_is_believed_only_from_trusted_proxies(faced_client) -> None:
    limits = {"requests_per_s": 0.5, "request_burst": 1}
    untrusted = await faced_client(prepare=add_test_routes, limits=limits)
    first = await untrusted.post("/test/echo", json={"text": "x"}, headers=_xff("10.0.0.1"))
    second = await untrusted.post("/test/echo", json={"text": "x"}, headers=_xff("10.0.0.2"))
    assert (first.status, second.status) == (200, 429)  # both are the loopback peer

    trusted = await faced_client(
        prepare=add_test_routes, limits=limits, server={"trusted_proxies": ["127.0.0.0/8"]}
    )
    for client_ip in ("10.0.0.1", "10.0.0.2"):
        response = await trusted.post("/test/echo", json={"text": "x"}, headers=_xff(client_ip))
        assert response.status == 200, client_ip
    response = await trusted.post("/test/echo", json={"text": "x"}, headers=_xff("10.0.0.1"))
    assert response.status == 429
    assert "10.0.0.1" in (await response.json())["error"]


def test_client_address_walks_forwarded_for_through_trusted_hops_only() -> None:
    resolve = ClientAddress(parse_networks(["127.0.0.1", "10.1.0.0/16"])).resolve
    assert str(resolve("127.0.0.1", "203.0.113.9, 10.1.2.3")) == "203.0.113.9"
    # a client cannot forge its way past the first untrusted hop
    assert str(resolve("127.0.0.1", "6.6.6.6, 203.0.113.9, 10.1.2.3")) == "203.0.113.9"
    assert str(resolve("127.0.0.1", "garbage")) == "127.0.0.1"
    assert str(resolve("192.168.1.5", "203.0.113.9")) == "192.168.1.5"  # untrusted peer
    assert str(resolve("::ffff:127.0.0.1", "203.0.113.9")) == "203.0.113.9"
    assert resolve(None, "203.0.113.9") is None


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    a = ClientAddress().resolve("2001:db8:1:2::10", None)
    b = ClientAddress().resolve("2001:db8:1:2:ffff::1", None)
    c = ClientAddress().resolve("2001:db8:1:3::10", None)
    assert rate_key(a) == rate_key(b) != rate_key(c)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_gcra_allows_burst_then_the_sustained_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10, burst=5, clock=clock)
    assert [limiter.hit("a") for _ in range(5)] == [0.0] * 5
    assert limiter.hit("a") == pytest.approx(0.1)
    assert limiter.hit("b") == 0.0  # other clients are unaffected
    clock.now += 0.1  # one interval later: exactly one more
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") > 0
    clock.now += 10  # fully recovered: the whole burst again
    assert [limiter.hit("a") for _ in range(5)] == [0.0] * 5
    assert limiter.rejected == 2


def test_rate_limiter_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1, burst=10, clock=clock, max_keys=100)
    for i in range(10_000):
        limiter.hit(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) <= 100
    clock.now += 60  # every key has recovered: all are swept
    limiter.hit("fresh")
    assert len(limiter) == 1


# --- headers, request id, access log ----------------------------------------------------


async def test_security_headers_on_pages_and_api(faced_client) -> None:
    client = await faced_client()
    for path in ("/", "/health"):
        response = await client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert f"ws://{client.host}:{client.port}" in csp
        assert response.headers["Server"] == "faced"


async def test_a_hostile_host_header_does_not_reach_the_csp(faced_client) -> None:
    client = await faced_client()
    response = await client.get("/health", headers={"Host": "evil; script-src *"})
    csp = response.headers["Content-Security-Policy"]
    assert "evil" not in csp
    assert "connect-src 'self';" in csp


async def test_request_id_is_echoed_or_made_up(faced_client) -> None:
    client = await faced_client()
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    response = await client.get("/health", headers={"X-Request-ID": "bad id\u00e9"})
    made_up = response.headers["X-Request-ID"]
    assert made_up != "bad id" and len(made_up) == 16


async def test_one_access_log_line_per_request_with_fields(faced_client, caplog) -> None:
    client = await faced_client()
    with caplog.at_level(logging.DEBUG, logger="faced.access"):
        await client.get("/health")
        await client.post("/nowhere")
    records = [r for r in caplog.records if r.name == "faced.access"]
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", "/health", 200),
        ("POST", "/nowhere", 404),
    ]
    assert records[0].levelno == logging.DEBUG and records[1].levelno == logging.INFO
    assert records[0].peer == "127.0.0.1"
    assert records[0].ms >= 0


_json = {"Content-Type": "application/json"}


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def _chunks(data: bytes):
    for start in range(0, len(data), 500):
        yield data[start : start + 500]


# --- the whole router against the access policy -----------------------------------------


def _routes(app: web.Application) -> list[tuple[str, str, Access]]:
    """(method, concrete path, declared class) of every route the real app serves."""
    policy = app[ACCESS_KEY]
    found = []
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS", "*") or route.resource is None:
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.resource.canonical)
        found.append((route.method, path, policy.declared(route)))
    return found


async def test_with_a_key_every_route_outside_the_public_list_answers_401(faced_client) -> None:
    client = await faced_client(auth={"api_key": KEY}, limits={"request_burst": 10_000})
    checked = []
    for method, path, declared in _routes(client.app):
        if (method, path) in PUBLIC_ROUTES or path.startswith(PUBLIC_PREFIXES):
            continue
        if declared is Access.HANDSHAKE:
            continue  # its key comes in the socket's first message (tested with the route)
        response = await client.request(method, path)
        assert response.status == 401, (method, path, response.status)
        checked.append(path)
    assert {"/api/state", "/ws/agent", "/api/events"} <= set(checked)


async def test_without_a_key_private_routes_refuse_lan_clients(faced_client) -> None:
    client = await faced_client(server={"trusted_proxies": ["127.0.0.1"]})
    private = [(m, p) for m, p, declared in _routes(client.app) if declared is Access.PRIVATE]
    assert ("GET", "/api/tracking") in private
    for method, path in private:
        response = await client.request(method, path, headers=_xff("192.168.1.20"))
        assert response.status == 403, (method, path, response.status)
        assert "FACE_API_KEY" in (await response.json())["error"]


@pytest.mark.parametrize("path", ["/v1/analyze", "/api/v1/jobs"])
async def test_a_multipart_part_with_a_bad_header_is_a_400(faced_client, path, tmp_path) -> None:
    # aiohttp's multipart parser refuses a NUL in a part's headers (found by the API fuzzer).
    client = await faced_client(server={"state_dir": str(tmp_path)})
    body = b'--B\r\nContent-Disposition: form-data; name="\x00a"\r\n\r\nx\r\n--B--\r\n'
    response = await client.post(
        path, data=body, headers={"Content-Type": "multipart/form-data; boundary=B"}
    )
    assert response.status == 400
    assert (await response.json())["error"].startswith("malformed multipart body: ")
