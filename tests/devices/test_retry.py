"""The shared retry rule of the camera, the speaker and the display (faced.devices.retry).

Pure: a fake clock drives a retry loop shaped like the
devices' own, so every delay and log decision is checked without waiting."""

from __future__ import annotations

import pytest

from faced.devices.retry import Backoff, Health, Reporting


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 10.0)
    assert [backoff.next() for _ in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.delay_s == 10.0
    backoff.reset()
    assert backoff.delay_s == 0.5 and backoff.next() == 0.5 and backoff.delay_s == 1.0


def test_backoff_refuses_delays_that_cannot_double_to_a_cap() -> None:
    for first, most in ((0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)):
        with pytest.raises(ValueError, match="first_s <= max_s"):
            Backoff(first, most)


def test_a_failing_device_is_retried_less_and_less_often_and_logged_once_per_reason() -> None:
    """A device down for a while, then up: attempts at 0, 1, 3, 7, 15, 30, 45 s (doubling
    from 1 s to the 15 s cap), one log line per distinct reason, one recovery."""
    clock = FakeClock()
    backoff = Backoff(1.0, 15.0)
    health = Health()
    reasons = ["unplugged", "unplugged", "busy", "busy", "busy", "unplugged", None]
    attempts, logged, recovered = [], [], []
    for reason in reasons:
        attempts.append(clock())
        if reason is None:
            health.reopens += 1
            recovered.append(health.working())
            backoff.reset()
            continue
        if health.failed(reason):
            logged.append(reason)
        assert (health.status, health.error) == ("error", reason)
        clock.wait(backoff.next())
    assert attempts == [0.0, 1.0, 3.0, 7.0, 15.0, 30.0, 45.0]
    assert logged == ["unplugged", "busy", "unplugged"]
    assert recovered == [True]
    assert (health.status, health.error, health.reopens) == ("ok", None, 1)
    assert backoff.delay_s == 1.0


def test_the_same_reason_after_the_device_worked_is_news_again() -> None:
    health = Health()
    assert health.status == "starting" and not health.failing
    assert health.failed("gone") and not health.failed("gone")
    assert health.working() and not health.working()
    assert health.failed("gone")


def test_opened_reports_ok_but_the_failure_lasts_until_the_device_works() -> None:
    """A sink that opens and then fails its first write for the same reason: no second log
    line, and the recovery is only told once it plays."""
    health = Health()
    assert health.failed("no device")
    health.opened()
    assert (health.status, health.error) == ("ok", None) and health.failing
    assert not health.failed("no device")
    health.opened()
    assert health.working() and not health.failing


def test_a_device_reports_what_its_health_says() -> None:
    class Device(Reporting):
        def __init__(self) -> None:
            self.health = Health()

    device = Device()
    assert (device.status, device.error, device.reopens) == ("starting", None, 0)
    device.health.failed("gone")
    device.health.reopens += 1
    assert (device.status, device.error, device.reopens) == ("error", "gone", 1)
