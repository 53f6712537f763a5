"""faced.service starts under systemd and reports READY.

Prints start-to-READY time from systemd's own timestamps (ExecMainStartTimestamp to
ActiveEnterTimestamp). As root it restarts the service first (Type=notify: `systemctl
restart` returns when READY=1 arrives); otherwise it checks the running instance.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest


def _properties(*names: str) -> dict[str, str]:
    output = subprocess.run(
        ["systemctl", "show", "faced.service", *(f"--property={n}" for n in names)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_service_reports_ready() -> None:
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        pytest.skip("systemd is not PID 1 here")
    if _properties("LoadState")["LoadState"] != "loaded":
        pytest.skip("faced.service is not installed (image-build/recipe/install.sh)")
    if os.geteuid() == 0:
        subprocess.run(["systemctl", "restart", "faced.service"], check=True, timeout=180)
    state = _properties(
        "ActiveState",
        "SubState",
        "Type",
        "StatusText",
        "ExecMainStartTimestampMonotonic",
        "ActiveEnterTimestampMonotonic",
        "WatchdogUSec",
    )
    assert state["Type"] == "notify"
    assert (state["ActiveState"], state["SubState"]) == ("active", "running"), state
    ready_s = (
        int(state["ActiveEnterTimestampMonotonic"]) - int(state["ExecMainStartTimestampMonotonic"])
    ) / 1e6
    print(f"\nfaced.service: start to READY {ready_s:.2f} s; status: {state['StatusText']!r}")
    url = os.environ.get("FACED_HW_URL", "http://127.0.0.1:9999")
    with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
        health = json.load(response)
    assert health["status"] == "ok", health
