"""`faced bench SUBJECT`: benchmarks that print their figures beside a baseline.

Owns: the command and the choice of subject. Does not own: any measurement (one module per
subject in faced.bench). Each subject lives in faced/bench/ and exposes
``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when its
subcommand is parsed (``_SubjectParser`` adds its arguments then), so every other faced
command — `faced analyze` timed against MediaPipe among them — starts without importing
asyncio, aiohttp's helpers or the speaker for benchmarks it does not run (the start-up
that saves shows in `bench/pipeline_vs_mediapipe.py`'s 1-frame clip).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

SUBJECTS: dict[str, str] = {
    "api": "POST /api/state throughput (faced vs bare aiohttp) and viewer fan-out latency",
    "pipeline": "face pipeline latency per stage, detection and tracking apart",
    "live": "capture→publish latency and event-loop lag while tracking (and analyzing)",
    "analyze": "POST /v1/analyze p50/p99 latency and requests/s, 1 vs 2 pipeline workers",
    "perception": "distance_m error by face size, person event latency frame → SSE",
    "memory": "the daemon's RSS: bare, tracking, 50 viewers, analyze load, N min; start time",
    "soak": "viewers, agents, tracking and analyze for N min: RSS, loop lag, messages lost",
    "speaker": "CPU per second of audio played (conversion, resampling, lip sync) vs the floor",
}


def _subject(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"faced.bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"faced.bench.{name}":
            return None
        raise


class _SubjectParser(argparse.ArgumentParser):
    """A subject's parser that imports the subject and adds its arguments only when it is
    used (argparse builds every parser up front, whichever command runs)."""

    subject = ""
    _loaded = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if not self._loaded and self.subject:
            self._loaded = True
            module = _subject(self.subject)
            if module is not None:
                module.add_arguments(self)
        return super().parse_known_args(args, namespace)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark (figures side by side with a baseline)",
        description="Benchmarks measured on this machine, each beside a baseline in the same run.",
    )
    subjects = parser.add_subparsers(dest="subject", metavar="SUBJECT", parser_class=_SubjectParser)
    for name, summary in SUBJECTS.items():
        sub = subjects.add_parser(name, help=summary, description=summary)
        sub.subject = name
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
