"""Demand for a costly, optional step: who needs it now.

Owns ``Demand``: the consumers of one optional result (live tracking's blendshapes) and
whether any of them needs it now. Three kinds of consumer, each named (``/health`` lists
them): holds counted while they last (``with demand.hold("tracking socket"):`` — a socket,
a job), timed holds that run out (``demand.touch("emotion_state", 10)`` — a polling reader
keeps it on while it polls), and watches asked every time (``demand.watch("mirror",
lambda: follower.mode == "mirror")`` — a mode or a state someone else owns). Does not own
the step (faced.live asks ``needed()`` once per frame and runs it or not), nor deciding who
is a consumer (each route or component says so where it reads). Why: MediaPipe runs its
blendshape graph whether or not anybody reads it; a box that tracks all day for presence
alone should not pay for 52 scores nobody reads. Thread-safe: consumers change on the event
loop, the tracking thread asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Demand:
    """Who needs the step now; ``always`` (a setting) makes it needed whoever asks."""

    def __init__(self, *, always: bool = False, clock: Callable[[], float] = time.monotonic):
        self.always = always
        self._clock = clock
        self._lock = threading.Lock()
        self._holds: dict[str, int] = {}
        self._until: dict[str, float] = {}
        self._watches: dict[str, Callable[[], bool]] = {}

    @contextmanager
    def hold(self, who: str) -> Iterator[None]:
        """Needed while the block runs (several holders of one name count apart)."""
        self.acquire(who)
        try:
            yield
        finally:
            self.release(who)

    def acquire(self, who: str) -> None:
        with self._lock:
            self._holds[who] = self._holds.get(who, 0) + 1

    def release(self, who: str) -> None:
        with self._lock:
            left = self._holds.get(who, 0) - 1
            if left > 0:
                self._holds[who] = left
            else:
                self._holds.pop(who, None)

    def touch(self, who: str, seconds: float) -> None:
        """Needed for the next ``seconds`` (a read that will likely come again)."""
        until = self._clock() + seconds
        with self._lock:
            self._until[who] = max(until, self._until.get(who, until))

    def watch(self, who: str, needs: Callable[[], bool]) -> None:
        """Needed whenever ``needs()`` says so (it must be cheap and must not block)."""
        with self._lock:
            self._watches[who] = needs

    def unwatch(self, who: str) -> None:
        with self._lock:
            self._watches.pop(who, None)

    def consumers(self) -> list[str]:
        """The names that need it now, sorted (``always`` is named "always")."""
        now = self._clock()
        with self._lock:
            names = set(self._holds)
            expired = [who for who, until in self._until.items() if until <= now]
            for who in expired:
                del self._until[who]
            names.update(self._until)
            watches = list(self._watches.items())
        names.update(who for who, needs in watches if needs())
        if self.always:
            names.add("always")
        return sorted(names)

    def needed(self) -> bool:
        if self.always:
            return True
        now = self._clock()
        with self._lock:
            if self._holds or any(until > now for until in self._until.values()):
                return True
            watches = list(self._watches.values())
        return any(needs() for needs in watches)


__all__ = ["Demand"]
