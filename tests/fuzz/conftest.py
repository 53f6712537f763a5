"""The fuzzers' executions per decoder, in the terminal summary (the README's figures)."""

from __future__ import annotations

from typing import Any

from tests.fuzz.fuzzing import EXECUTIONS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if EXECUTIONS:
        terminalreporter.section("fuzz executions")
        for name, count in sorted(EXECUTIONS.items()):
            terminalreporter.write_line(f"{name}: {count}")
