"""The `faced` command line: one parser, one subcommand per module under faced/commands/.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit status.
Command modules import their heavy dependencies inside ``func`` so that
``faced --help`` and ``faced config check`` stay fast on a Raspberry Pi; a command line that
names a command imports only that command's module (each module's command is named as the
module), so `faced analyze` does not pay for the daemon's, the benches' or the MCP
server's imports. Does not own any command (faced.commands) or the daemon (faced.app).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from faced import __version__

# Order here is the order `faced --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "faced.commands.serve",
    "faced.commands.config",
    "faced.commands.models",
    "faced.commands.analyze",
    "faced.commands.bench",
    "faced.commands.audio",
    "faced.commands.ctl",
    "faced.commands.discover",
    "faced.commands.mcp",
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the command ``argv`` names (its first
    argument): the one module that command needs."""
    parser = argparse.ArgumentParser(
        prog="faced",
        description="faced — the face of a LAN AI agent, as a box.",
    )
    parser.add_argument("--version", action="version", version=f"faced {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    named = f"faced.commands.{argv[0]}" if argv else None
    for module_name in (named,) if named in COMMAND_MODULES else COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` names (the process's own command line when None)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    finally:
        if argv is None:
            # The process ends with its command: the interpreter's shutdown would run full
            # garbage collections over every object still alive (numpy's, OpenCV's, the
            # models'), ~15 ms of CPU for memory the OS takes back anyway. Frozen objects
            # are left to it; atexit handlers and stream flushing still run.
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
