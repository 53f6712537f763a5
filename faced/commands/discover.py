"""`faced discover`: list the faced boxes on the LAN (mDNS/DNS-SD, ``_faced._tcp``).

Owns: the arguments (``--timeout``, ``--json``) and what is printed: a table (name, address,
port, version, key required) or one JSON object per box. Does not own the browsing
(faced.client's ``discover()``, which the command line shares with agents). No box found
prints one line on stderr and exits 1; python-zeroconf missing or a bad argument exits 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

EXIT_NONE_FOUND: Final = 1
EXIT_USAGE: Final = 2
MAX_TIMEOUT_S: Final = 600.0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds more than 0 and at most {MAX_TIMEOUT_S:g}, not {text!r}"
        )
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "discover",
        help="list the faced boxes on the LAN (mDNS)",
        description="Browse the LAN for faced boxes (DNS-SD _faced._tcp) and list each: "
        "name, address, port, version, whether it requires an API key. Needs the mdns "
        "extra: pip install 'faced[mdns]'.",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=3.0,
        metavar="S",
        help="how long to listen for answers, in seconds (default 3)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per box")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415  (not at import: every command builds this parser)

    import msgspec  # noqa: PLC0415

    from faced.client.discovery import discover  # noqa: PLC0415

    try:
        boxes = asyncio.run(discover(args.timeout))
    except ImportError as exc:
        if exc.name != "zeroconf":
            raise
        print(f"faced discover: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"faced discover: cannot browse the LAN: {exc}", file=sys.stderr)
        return EXIT_NONE_FOUND
    if not boxes:
        print(f"faced discover: no faced box answered within {args.timeout:g} s", file=sys.stderr)
        return EXIT_NONE_FOUND
    if args.json:
        for box in boxes:
            record = {**msgspec.to_builtins(box), "url": box.url}
            print(msgspec.json.encode(record).decode())
        return 0
    rows = [("NAME", "ADDRESS", "PORT", "VERSION", "KEY")]
    for box in boxes:
        key = {True: "yes", False: "no", None: "?"}[box.key_required]
        address = box.addresses[0] if box.addresses else box.host
        rows.append((box.name, address, str(box.port), box.version or "?", key))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0
