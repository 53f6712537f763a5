"""GET /openapi.json and GET /docs: every route documented, valid OpenAPI 3.1, the browser.

The real app on loopback; the document is checked with openapi-spec-validator and against the
app's own router: a route added without a description fails (its summary is empty), one that
is removed disappears, and /health and error bodies decode strictly as their schemas.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from faced.api.openapi import _route_path
from faced.keys import ACCESS_KEY
from faced.schemas.analysis import Analysis
from faced.schemas.analyze_api import Base64Request
from faced.schemas.errors import ErrorBody
from faced.schemas.health import Health
from tests.browser import Browser

Client = TestClient[Any, Any]


@pytest.fixture
async def client(faced_client: Callable[..., Awaitable[Client]]) -> Client:
    return await faced_client(auth={"api_key": "sesame"})


async def _document(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")  # public: no key sent
    assert response.status == 200
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


async def test_every_route_is_documented_and_the_document_is_valid(client: Client) -> None:
    document = await _document(client)
    # Raises with the reason when it is not valid OpenAPI 3.1 (reads its schemas from disk).
    await asyncio.to_thread(validate, document)
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    policy = client.app[ACCESS_KEY]
    routes = list(client.app.router.routes())
    gets = {_route_path(r) for r in routes if r.method == "GET"}
    for route in routes:
        path = _route_path(route)
        method = "get" if route.method == "HEAD" and path in gets else route.method.lower()
        assert path in paths, f"{route.method} {path} missing from /openapi.json"
        assert method in paths[path], f"{route.method} {path} missing from /openapi.json"
        operation = paths[path][method]
        if route.method != "HEAD":  # aiohttp's automatic HEAD is documented by its GET
            assert operation["x-faced-access"] == policy.declared(route).value, path
        assert operation["summary"]
    # Nothing documented that is not served.
    served = {_route_path(r) for r in routes}
    assert set(paths) == served


async def test_access_classes_and_schemas_come_from_the_code(client: Client) -> None:
    document = await _document(client)
    paths = document["paths"]
    assert paths["/health"]["get"]["x-faced-access"] == "public"
    assert paths["/health"]["get"]["security"] == []
    assert paths["/v1/analyze"]["post"]["x-faced-access"] == "key"
    assert "401" in paths["/v1/analyze"]["post"]["responses"]
    assert paths["/v1/stream"]["get"]["x-faced-access"] == "handshake"
    assert {} in paths["/v1/stream"]["get"]["security"]  # the key may come in a message
    body = paths["/v1/analyze/base64"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"] == {"$ref": "#/components/schemas/Base64Request"}
    assert "application/msgpack" in body
    ok = paths["/v1/analyze/base64"]["post"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/Analysis"}
    # The components are msgspec's own schemas of the types the handlers use.
    _, expected = msgspec.json.schema_components(
        [Analysis, Base64Request], ref_template="#/components/schemas/{name}"
    )
    schemas = document["components"]["schemas"]
    for name, schema in expected.items():
        assert schemas[name] == schema, name
    assert schemas["Base64Request"]["required"] == ["image_base64"]


async def test_docs_page_and_its_assets_are_served_from_the_package(client: Client) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # No inline script (the CSP would block it), no external host.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "http://" not in html and "https://" not in html
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {"/static/docs/docs.js", "/static/docs/docs.css"} <= set(assets)
    for asset in assets:
        served = await client.get(asset)
        assert served.status == 200, asset
        assert len(await served.read()) > 500, asset


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (1000, 800)


async def test_docs_renders_in_chromium_under_the_csp(client: Client, browser: Browser) -> None:
    document = await _document(client)
    operations = sum(len(item) for item in document["paths"].values())
    page = await browser.page(str(client.make_url("/docs")))
    await page.wait_for("document.body.dataset.ready === 'true'", what="the rendered document")
    rendered = await page.evaluate("document.querySelectorAll('details.op').length")
    assert rendered == operations
    schemas = await page.evaluate("document.querySelectorAll('#schemas h3').length")
    assert schemas == len(document["components"]["schemas"])
    await page.evaluate(
        "(() => { const f = document.getElementById('filter');"
        " f.value = 'analyze'; f.dispatchEvent(new Event('input')); return true; })()"
    )
    visible = await page.evaluate("document.querySelectorAll('details.op:not(.hidden)').length")
    assert 0 < visible < operations
    await page.screenshot("docs")
    assert page.errors == []  # CSP violations and script errors land here


async def test_health_and_error_bodies_are_exactly_what_the_document_says(client: Client) -> None:
    document = await _document(client)
    paths = document["paths"]
    health = paths["/health"]["get"]["responses"]["200"]["content"]["application/json"]
    assert health["schema"] == {"$ref": "#/components/schemas/Health"}
    # The schemas forbid unknown fields: a field the document does not name fails here.
    response = await client.get("/health")
    report = msgspec.json.decode(await response.read(), type=Health)
    assert report.ok is True and report.components
    error = paths["/v1/analyze"]["post"]["responses"]["401"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    refused = [
        await client.get("/no/such/route"),  # aiohttp's 404
        await client.post("/v1/analyze"),  # 401: no key
        await client.get("/ws/viewer?encoding=xml"),  # 400 with field and allowed
    ]
    for response in refused:
        assert response.status >= 400
        msgspec.json.decode(await response.read(), type=ErrorBody)


async def test_query_parameters_come_from_the_query_structs(client: Client) -> None:
    document = await _document(client)
    parameters = {p["name"]: p for p in document["paths"]["/ws/tracking"]["get"]["parameters"]}
    assert set(parameters) == {"encoding", "fields", "fps", "events"}
    assert parameters["encoding"]["in"] == "query"
    assert parameters["encoding"]["schema"]["enum"] == ["json", "msgpack"]
    assert parameters["fps"]["schema"]["exclusiveMinimum"] == 0
    analyze = {p["name"] for p in document["paths"]["/v1/analyze"]["post"]["parameters"]}
    assert analyze == {"landmarks", "num_faces", "blendshapes"}
