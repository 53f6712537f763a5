"""mDNS discovery: the daemon's announcement, `faced discover`, faced.client.discover().

Whatever multicasts runs in a private network namespace (``unshare -n``, only ``lo`` up;
tests/discovery_scenario.py, which refuses to run anywhere else): the real daemon, the real
command, the real browser, never a packet on the machine's network. Where a namespace cannot
be made (not root), those tests skip and say why.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faced.keys import MDNS_KEY

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "discovery_scenario.py"


def _netns_reason() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip (util-linux, iproute2) not installed"
    probe = subprocess.run(
        ["unshare", "-n", "sh", "-c", "ip link set lo up"],
        check=False,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"cannot make a private network namespace: {probe.stderr.strip()}"
    return None


NETNS_UNAVAILABLE = _netns_reason()
needs_netns = pytest.mark.skipif(
    NETNS_UNAVAILABLE is not None,
    reason=f"mDNS tests need `unshare -n` (root; CI runs as root): {NETNS_UNAVAILABLE}",
)


def run_scenario(name: str) -> dict[str, Any]:
    command = f"ip link set lo up && exec {sys.executable} {SCENARIO} {name}"
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


@pytest.mark.slow
@needs_netns
def test_announced_found_reannounced_with_a_key_and_gone_after_goodbye() -> None:
    seen = run_scenario("announce")
    txt = {
        "version": "0.1.0",
        "api": "openface-v1",
        "key": "no",
        "path": "/",
        "openapi": "/openapi.json",
    }
    assert seen["health"] == {"status": "ok", "announced": True, "name": "test box", "txt": txt}
    [box] = seen["discovered"]
    assert box["name"] == "test box"
    assert box["addresses"] == ["127.0.0.1"]
    assert (box["version"], box["api"], box["key_required"]) == ("0.1.0", "openface-v1", False)
    assert (box["path"], box["openapi"]) == ("/", "/openapi.json")
    port = box["port"]

    cli = seen["cli"]
    assert cli["rc"] == 0, cli["stderr"]
    header, row = cli["stdout"].splitlines()
    assert header.split() == ["NAME", "ADDRESS", "PORT", "VERSION", "KEY"]
    assert row.split() == ["test", "box", "127.0.0.1", str(port), "0.1.0", "no"]
    [record] = [json.loads(line) for line in seen["cli_json"]["stdout"].splitlines()]
    assert record["url"] == f"http://127.0.0.1:{port}"
    assert record["key_required"] is False

    # Goodbye on SIGTERM: a browser that saw it come sees it go, and nobody finds it after.
    assert seen["exit"] == 0
    assert seen["browser_events"] == [
        "Added test box._faced._tcp.local.",
        "Removed test box._faced._tcp.local.",
    ]
    assert seen["after_goodbye"] == []

    # A key set (at startup: the key has no run-time change) is in the record.
    assert seen["health_with_key"]["txt"] == {**txt, "key": "yes"}
    [keyed] = seen["discovered_with_key"]
    assert keyed["key_required"] is True


@pytest.mark.slow
@needs_netns
def test_disabled_announces_nothing() -> None:
    seen = run_scenario("disabled")
    assert seen["health"] == {"status": "off", "announced": False}
    assert seen["discovered"] == []
    assert seen["cli"]["rc"] == 1
    assert seen["cli"]["stdout"] == ""
    assert seen["cli"]["stderr"] == "faced discover: no faced box answered within 1 s\n"
    assert seen["exit"] == 0


async def test_without_zeroconf_one_line_and_the_daemon_runs_on(
    faced_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The package missing, as on an install without the mdns extra (nothing is sent: the
    # import fails before any socket exists).
    monkeypatch.setitem(sys.modules, "zeroconf", None)
    monkeypatch.setitem(sys.modules, "zeroconf.asyncio", None)
    client = await faced_client(mdns={"enabled": True})
    announcer = client.app[MDNS_KEY]
    for _ in range(100):
        if announcer.report()["status"] == "off":
            break
        await asyncio.sleep(0.01)
    health = await (await client.get("/health")).json()
    assert health["status"] == "ok"  # not degraded: the extra is optional
    assert health["components"]["mdns"] == {
        "status": "off",
        "announced": False,
        "error": "python-zeroconf is not installed (extra mdns)",
    }
    lines = [r.getMessage() for r in caplog.records if r.name == "faced.discovery"]
    assert lines == [
        "mdns: python-zeroconf is not installed (pip install 'faced[mdns]'); not announcing"
    ]


def test_client_imports_without_zeroconf_and_discover_names_the_extra() -> None:
    code = (
        "import sys, asyncio; sys.modules['zeroconf'] = None\n"
        "import faced.client\n"
        "try:\n"
        "    asyncio.run(faced.client.discover(1))\n"
        "except ImportError as exc:\n"
        "    print(exc.name, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert result.stdout == (
        "zeroconf discovering boxes needs python-zeroconf: pip install 'faced[mdns]'\n"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "expected seconds more than 0 and at most 600, not '0'"),
        ("soon", "expected seconds, not 'soon'"),
    ],
)
def test_discover_refuses_a_bad_timeout(value: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "faced", "discover", "--timeout", value],
        check=False,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert message in result.stderr
