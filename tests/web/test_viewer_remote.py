"""The viewer watching another daemon (``?server=``), in real Chromium, under the real CSP.

Two faced servers on loopback (different ports are different
origins): the page comes from one and, with ``?server=ws://127.0.0.1:PORT/ws/viewer``,
shows the other's face. Its Content-Security-Policy allows exactly that daemon and nothing
else: a socket to a third port is still blocked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser import Browser
from tests.web.test_viewer import HEIGHT, WIDTH, open_viewer, rgb, wait_color

pytestmark = pytest.mark.slow


ALERT = "#E57373"
LISTENING = "#81C784"
VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__violations.push(e.effectiveDirective + " " + e.blockedURI));
true
"""


@pytest.fixture
def browser_size() -> tuple[int, int]:
    return (WIDTH, HEIGHT)


@pytest.fixture
def state_dir(tmp_path: Path) -> dict[str, Any]:
    return {"server": {"state_dir": str(tmp_path / "state")}}


async def _viewers(client: Any) -> int:
    body = await (await client.get("/health")).json()
    viewers: int = body["viewers"]
    return viewers


async def test_server_override_watches_another_daemon_and_nothing_else(
    faced_client: Any, state_dir: Any, browser: Browser
) -> None:
    page_host = await faced_client(**state_dir)
    other = await faced_client(**state_dir)
    other_socket = f"ws://127.0.0.1:{other.port}/ws/viewer"
    url = page_host.make_url("/").with_query(server=other_socket)
    reply = await page_host.get(url.path_qs)
    csp = reply.headers["Content-Security-Policy"]
    assert f"ws://127.0.0.1:{other.port} http://127.0.0.1:{other.port}" in csp
    assert " ws: " not in csp and " wss: " not in csp and "*" not in csp

    await other.post("/api/state", json={"state": "alert"})
    page = await open_viewer(browser, str(url))
    await wait_color(page, rgb(ALERT))  # the other daemon's face
    assert await _viewers(other) == 1 and await _viewers(page_host) == 0
    await other.post("/api/state", json={"state": "listening"})
    await wait_color(page, rgb(LISTENING))
    await page.screenshot("viewer-remote-server")

    # The override allowed that one daemon, not the network: a third port stays blocked.
    await page.evaluate(VIOLATIONS)
    await page.evaluate(
        f"try {{ new WebSocket('ws://127.0.0.1:{other.port + 1}/ws/viewer'); }} catch (e) {{}} true"
    )
    blocked = await page.wait_for(
        "window.__violations.length > 0 && window.__violations", what="a CSP violation"
    )
    assert blocked == [f"connect-src ws://127.0.0.1:{other.port + 1}/ws/viewer"]
    # The socket error the browser logs for the blocked attempt is the only page error.
    assert all(str(other.port + 1) in error for error in page.errors), page.errors


async def test_without_a_usable_override_the_csp_stays_same_origin(
    faced_client: Any, state_dir: Any
) -> None:
    client = await faced_client(**state_dir)
    plain = (await client.get("/")).headers["Content-Security-Policy"]
    own = f"connect-src 'self' ws://{client.host}:{client.port} wss://{client.host}:{client.port};"
    assert own in plain
    for server in [
        "http://127.0.0.1:1/ws/viewer",  # not a socket
        "ws://[::1]:9999/ws/viewer",  # CSP cannot name an IPv6 literal
        "ws://evil; script-src *",
        "ws://user:pw@host/ws/viewer",
        "ws://host:99999/ws/viewer",
        "javascript:alert(1)",
    ]:
        reply = await client.get(f"/?server={quote(server, safe='')}")
        assert reply.status == 200
        assert reply.headers["Content-Security-Policy"] == plain, server
    # Only the viewer page takes the override: the dashboard's policy ignores it.
    dashboard = await client.get(f"/dashboard?server={quote('ws://127.0.0.1:1/ws/viewer')}")
    assert dashboard.headers["Content-Security-Policy"] == plain
