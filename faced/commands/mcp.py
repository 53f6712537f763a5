"""`faced mcp`: the MCP server (stdio) an AI agent's host spawns on the agent's machine.

Owns: the command's arguments (``--url``/``FACE_URL``, ``--api-key``/``FACE_API_KEY``, the
names Open Face's MCP server uses), logging to stderr (stdout is the protocol's channel),
and the one line and exit status 2 when the ``mcp`` extra is missing. Does not own the
tools (faced.mcp_server) or the daemon they call. The SDK is imported only when the command
runs: ``faced --help`` must not pay its ~0.4 s and 40 MiB.
"""

from __future__ import annotations

import argparse
import logging
import sys

from faced.commands import add_daemon_arguments

EX_USAGE = 2
MISSING_SDK = "faced mcp needs the MCP SDK: pip install 'faced[mcp]'"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "mcp",
        help="MCP server (stdio) for an AI agent: the face's tools and what the camera sees",
        description="Serve the Model Context Protocol on stdin/stdout for an agent's host "
        "(Claude Desktop, Claude Code, …), calling a faced daemon over HTTP. Run it on the "
        "agent's machine; it needs the mcp extra: pip install 'faced[mcp]'.",
    )
    add_daemon_arguments(parser, "the daemon's API key")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url: str = args.url
    if not url.startswith(("http://", "https://")):
        print(f"faced mcp: --url must start with http:// or https://, not {url!r}", file=sys.stderr)
        return EX_USAGE
    try:
        from faced.mcp_server import serve  # noqa: PLC0415 - the SDK only when needed
    except ImportError as exc:
        if exc.name is None or exc.name.split(".")[0] not in {"mcp", "mcp_types", "pydantic"}:
            raise
        print(MISSING_SDK, file=sys.stderr)
        return EX_USAGE
    # Before the SDK configures logging its own way: stderr only, quiet unless it matters.
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="faced mcp: %(levelname)s %(message)s"
    )
    import asyncio  # noqa: PLC0415  (not at import: every command builds this parser)

    try:
        asyncio.run(serve(url, args.api_key))
    except KeyboardInterrupt:
        return 130
    return 0
