"""Retrying a failing device: the wait between attempts, and what is reported meanwhile.

Owns ``Backoff`` (a first delay, doubling up to a cap, back to the first after a success)
and ``Health`` (a device loop's status, error and reopen count, and the rule that a failure
is logged once per distinct reason until the device works again).
Does not own the waiting, the reopening or the words of the log lines: the camera's and the
speaker's threads and the display policy's task do those, each in its own way.
Why: the camera, the speaker and the display retry the same way; one pure, clock-free copy of
the rule is tested once (tests/devices/test_retry.py) instead of three hand-written ones.
"""

from __future__ import annotations


class Backoff:
    """Delays between attempts: ``first_s``, doubling on each ``next()`` up to ``max_s``."""

    def __init__(self, first_s: float, max_s: float) -> None:
        if not 0 < first_s <= max_s:
            raise ValueError(f"backoff needs 0 < first_s <= max_s, got {first_s}, {max_s}")
        self.first_s = first_s
        self.max_s = max_s
        self.delay_s = first_s
        """The wait before the next attempt (``next()`` returns it and doubles it)."""

    def next(self) -> float:
        """The wait before the next attempt; the one after it is twice as long (capped)."""
        delay = self.delay_s
        self.delay_s = min(delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """The device works again: the next failure is retried soon."""
        self.delay_s = self.first_s


class Health:
    """A device loop's report (``status``, ``error``, ``reopens``) and when to log a failure.

    ``failed(reason)`` reports ``error (reason)`` and says whether the reason is news: one log
    line per distinct reason, not one per retry, until ``working()`` says the device works
    again. ``opened()`` reports ok without ending the failure: a device that opens may still
    fail at its first use, and the same reason then is no news."""

    def __init__(self, status: str = "starting") -> None:
        self.status = status
        self.error: str | None = None
        self.reopens = 0
        """Counted by the device (each owner defines what a reopen is)."""
        self._failing: str | None = None

    @property
    def failing(self) -> bool:
        """A failure was reported and the device has not worked since."""
        return self._failing is not None

    def failed(self, reason: str) -> bool:
        """Report the failure; True when ``reason`` differs from the last one logged."""
        news = reason != self._failing
        self.status, self.error, self._failing = "error", reason, reason
        return news

    def opened(self) -> None:
        """The device opened: reported ok, but its failure has not ended yet."""
        self.status, self.error = "ok", None

    def working(self) -> bool:
        """The device did its job; True when that ends a failure (log the recovery)."""
        ended = self._failing is not None
        self.status, self.error, self._failing = "ok", None, None
        return ended


class Reporting:
    """A device's ``status``, ``error`` and ``reopens``, read from its ``health`` (plain
    attribute reads: safe from the event loop while the device's thread writes them)."""

    health: Health

    @property
    def status(self) -> str:
        return self.health.status

    @property
    def error(self) -> str | None:
        return self.health.error

    @property
    def reopens(self) -> int:
        return self.health.reopens


__all__ = ["Backoff", "Health", "Reporting"]
