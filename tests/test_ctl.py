"""`faced ctl` as the operator runs it: a real process against the real daemon on loopback.

Each test runs ``python -m faced ctl …`` and reads its stdout, stderr and exit status;
the daemon is the real app on a loopback port (``faced_client``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from tests.conftest import REPO_ROOT, free_port

KEY = "s3cret-key"


async def _ctl(
    *args: str, env: Mapping[str, str] | None = None, seconds: float = 30.0
) -> tuple[int, str, list[str]]:
    """Exit status, stdout and the lines of stderr of ``faced ctl ARGS``."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("FACE_")}
    child_env["PYTHONPATH"] = str(REPO_ROOT)
    child_env.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "faced",
        "ctl",
        *args,
        env=child_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode().splitlines()


def _url(client: Any) -> str:
    return str(client.make_url("/")).rstrip("/")


async def test_state_say_history_health(faced_client: Any) -> None:
    client = await faced_client()
    url = _url(client)
    status, out, err = await _ctl("--url", url, "state", "thinking", "--emotion", "happy")
    assert (status, err) == (0, [])
    shown = json.loads(out)
    assert (shown["state"], shown["emotion"]) == ("thinking", "happy")
    status, out, _ = await _ctl("--url", url, "state", "--look", "0.5,-0.25", "--detail", "x")
    assert status == 0 and json.loads(out)["lookAt"] == {"x": 0.5, "y": -0.25}
    status, out, _ = await _ctl("--url", url, "state")
    assert status == 0 and json.loads(out)["state"] == "thinking"
    status, out, _ = await _ctl("--url", url, "state", "--reset")
    assert status == 0 and json.loads(out)["state"] == "idle"

    status, out, err = await _ctl("--url", url, "say", "Hello there", "--emotion", "happy")
    assert (status, err) == (0, [])
    assert json.loads(out) == {"seq": 1}
    status, out, _ = await _ctl("--url", url, "history")
    assert status == 0
    texts = [entry["data"]["text"] for entry in json.loads(out) if entry["type"] == "text"]
    assert texts == ["Hello there"]

    status, out, _ = await _ctl("health", env={"FACE_URL": url})
    health = json.loads(out)
    assert status == 0 and health["status"] == "ok" and "api" in health["components"]


async def test_watch_viewer_prints_json_lines(faced_client: Any) -> None:
    client = await faced_client()
    status, out, err = await _ctl("--url", _url(client), "watch", "--viewer", "--count", "1")
    assert (status, err) == (0, [])
    lines = out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["type"] == "state"


async def test_refusals_are_one_line_and_exit_1(faced_client: Any) -> None:
    client = await faced_client(auth={"api_key": KEY})
    url = _url(client)
    status, out, err = await _ctl("--url", url, "--api-key", KEY, "state", "dancing")
    assert status == 1 and out == "" and len(err) == 1
    assert err[0].startswith("faced ctl: 400: invalid value for 'state': 'dancing'; allowed:")
    status, out, err = await _ctl("--url", url, "say", "hi", env={"FACE_API_KEY": "wrong"})
    assert status == 1 and out == "" and len(err) == 1
    assert err[0].startswith("faced ctl: 403: ")
    status, _, err = await _ctl("--url", url, "say", "hi")
    assert status == 1 and len(err) == 1 and err[0].startswith("faced ctl: 401: ")
    status, out, _ = await _ctl("--url", url, "say", "hi", env={"FACE_API_KEY": KEY})
    assert status == 0 and json.loads(out) == {"seq": 1}


async def test_daemon_down_and_bad_arguments() -> None:
    down = f"http://127.0.0.1:{free_port()}"
    for action in (["health"], ["state", "thinking"], ["watch"], ["watch", "--viewer"]):
        status, out, err = await _ctl("--url", down, *action)
        assert status == 1 and out == "" and len(err) == 1, (action, err)
        assert "cannot connect (Connection refused)" in err[0]
    status, _, err = await _ctl("--url", "box.local:9999", "health")
    assert status == 2 and err == [
        "faced ctl: url must start with http:// or https://, not 'box.local:9999'"
    ]
    status, _, err = await _ctl("state", "--look", "left")
    assert status == 2 and "expected X,Y" in err[-1]
    status, _, err = await _ctl("watch", "--count", "0")
    assert status == 2 and "expected a whole number >= 1" in err[-1]
