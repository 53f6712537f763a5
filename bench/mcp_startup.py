"""`faced mcp` start-up time and memory: what an agent's machine pays to have the face's tools.

`faced mcp` runs on the agent's machine (its MCP host spawns it), not on the box. This
spawns it as a host would, speaks the protocol on its stdin/stdout (``initialize``, then
``tools/list``), and measures the time from spawning to the ``tools/list`` answer (ready to
serve a call), then closes stdin and reads the peak RSS of the exited process
(``wait4``'s ``ru_maxrss``). No daemon is needed: listing tools calls none. Side by side, the
baselines measured in the same run the same way (spawn to exit, peak RSS): the bare
interpreter (``python -c pass``), ``faced --help``, and the interpreter importing the SDK's
server (``import mcp.server.mcpserver``), so the figure reads against what no MCP server in
Python could beat.

    .venv/bin/python bench/mcp_startup.py              # 7 runs each, medians
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
HANDSHAKE = [
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    },
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def _wait(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Exit status and peak RSS in MiB of an exiting child."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024


def baseline(args: list[str]) -> tuple[float, float]:
    """Spawn to exit (s), peak RSS (MiB)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL)
    code, rss = _wait(process)
    took = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{args}: exit {code}")
    return took, rss


def faced_mcp() -> tuple[float, float, int]:
    """Spawn to the tools/list answer (s), peak RSS (MiB), tools listed."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-m", "faced", "mcp", "--url", "http://127.0.0.1:9"],
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    for message in HANDSHAKE:
        process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()
    tools = -1
    while line := process.stdout.readline():
        answer = json.loads(line)
        if answer.get("id") == 2:
            tools = len(answer["result"]["tools"])
            break
    took = time.perf_counter() - start
    process.stdin.close()
    code, rss = _wait(process)
    if tools < 0 or code != 0:
        raise SystemExit(f"faced mcp: no tools/list answer (exit {code})")
    return took, rss, tools


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    rows = {
        "python -c pass": lambda: baseline([PYTHON, "-c", "pass"]),
        "faced --help": lambda: baseline([PYTHON, "-m", "faced", "--help"]),
        "import mcp.server.mcpserver": lambda: baseline(
            [PYTHON, "-c", "import mcp.server.mcpserver"]
        ),
        "faced mcp → tools/list": lambda: faced_mcp()[:2],
    }
    print(f"faced mcp start-up, {runs} runs each, median (load {os.getloadavg()[0]:.1f})")
    print(f"{'':32} {'time':>9} {'peak RSS':>10}")
    for name, measure in rows.items():
        measure()  # warm the page cache: every row starts from the same disk state
        samples = [measure() for _ in range(runs)]
        took = statistics.median(s[0] for s in samples)
        rss = statistics.median(s[1] for s in samples)
        print(f"{name:32} {took * 1000:7.0f} ms {rss:7.1f} MiB")
    print(f"tools listed: {faced_mcp()[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
