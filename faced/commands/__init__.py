"""The subcommands of `faced`, one module each (see faced.cli).

Each owns its arguments and what it prints, not the work (the daemon, faced.vision, …).
Why: a command imports its heavy dependencies only when it runs.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Final, TypeVar

N = TypeVar("N", int, float)

DEFAULT_URL: Final = "http://127.0.0.1:9999"


def add_daemon_arguments(parser: argparse.ArgumentParser, key_help: str) -> None:
    """``--url`` and ``--api-key`` of the commands that talk to a running daemon, with the
    environment names Open Face's tools use (FACE_URL, FACE_API_KEY)."""
    parser.add_argument(
        "--url",
        default=os.environ.get("FACE_URL") or DEFAULT_URL,
        help=f"the daemon (env FACE_URL; default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("FACE_API_KEY") or None,
        help=f"{key_help} (env FACE_API_KEY)",
    )


def at_least(kind: type[N], minimum: N, *, strict: bool = False) -> Callable[[str], N]:
    """An argparse ``type``: a finite number of ``kind`` >= ``minimum`` (> with ``strict``),
    refused in one line that says what was expected."""
    what = "a whole number" if kind is int else "a number"
    bound = f"{'>' if strict else '>='} {minimum}"

    def parse(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or value < minimum
            or (strict and value == minimum)
        ):
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    return parse
