"""`faced bench api|pipeline`: benchmarks that print their figures beside a baseline.

Owner: the Open Face protocol (issue 3) for the command and `api`; `pipeline` belongs to
faced.vision (faced/bench/pipeline.py). Each subject lives in faced/bench/ and exposes
``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when its
subcommand runs (or its parser is built), so `faced --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from types import ModuleType

SUBJECTS: dict[str, str] = {
    "api": "POST /api/state throughput (faced vs bare aiohttp) and viewer fan-out latency",
    "pipeline": "face pipeline latency per stage, detection and tracking apart",
    "live": "capture→publish latency and event-loop lag while tracking (and analyzing)",
    "analyze": "POST /v1/analyze p50/p99 latency and requests/s, 1 vs 2 pipeline workers",
    "speaker": "CPU per second of audio played (conversion, resampling, lip sync) vs the floor",
}


def _subject(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"faced.bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"faced.bench.{name}":
            return None
        raise


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (figures side by side with a baseline)",
        description="Benchmarks measured on this machine, each beside a baseline in the same run.",
    )
    subjects = parser.add_subparsers(dest="subject", metavar="SUBJECT")
    for name, summary in SUBJECTS.items():
        sub = subjects.add_parser(name, help=summary, description=summary)
        module = _subject(name)
        if module is not None:
            module.add_arguments(sub)
        sub.set_defaults(func=_runner(name))
    parser.set_defaults(func=lambda _args: _missing_subject(parser))


def _missing_subject(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    print("faced bench: choose a subject: " + ", ".join(SUBJECTS), file=sys.stderr)
    return 2


def _runner(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        module = _subject(name)
        if module is None:
            print(f"faced bench {name}: not available in this build", file=sys.stderr)
            return 2
        return int(module.run(args))

    return run
