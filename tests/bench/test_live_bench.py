"""`faced bench live` runs end to end and prints every figure beside its baseline and goal.

No timing is asserted: figures are the benchmark's to print.
"""

from __future__ import annotations

import argparse

import pytest

from faced.bench import live as bench_live


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    bench_live.add_arguments(parser)
    return parser


def test_bench_live_reports_four_phases(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["--seconds", "0.5", "--clients", "1"])
    assert bench_live.run(args) == 0
    out = capsys.readouterr().out
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert {"idle (baseline)", "tracking", "tracking + analyze", "tracking + job"} <= set(rows)
    assert "event-loop lag p99 under tracking + analyze:" in out
    assert "(goal <= 10 ms:" in out
    assert "capture -> publish (file source, tracking only): p50" in out
    # The loaded phase did analyze: its requests/s column is a number, not a dash.
    assert float(rows["tracking + analyze"].split()[-2]) > 0
    # Tracking's frame rate with and without a job, side by side in the same run.
    assert float(rows["tracking + job"].split("   ")[-1].split()[0]) >= 0
    assert "while a job runs: tracking" in out
    assert "analyze requests failed" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seconds", "0"], "--seconds: expected a number > 0, got '0'"),
        (["--clients", "-1"], "--clients: expected a whole number > 0, got '-1'"),
        (["--workers", "x"], "--workers: expected a whole number > 0, got 'x'"),
    ],
)
def test_bench_live_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
