"""The `faced` command line: one parser, one subcommand per module under faced/commands/.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``func`` to a callable taking the parsed namespace and returning an exit status.
Command modules import their heavy dependencies inside ``func`` so that
``faced --help`` and ``faced config check`` stay fast on a Raspberry Pi. Does not own any
command (faced.commands) or the daemon (faced.app).
"""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faced",
        description="faced — the face of a LAN AI agent, as a box.",
    )
    parser.add_argument("--version", action="version", version=f"faced {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
