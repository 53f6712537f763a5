"""In-process listeners: callables told of each event, one failing listener harming no other.

Owns: the list of listeners of one kind of event and calling each in turn. Does not own:
the events, or the order listeners are added in (the composition root, faced.app). Why:
live tracking's results, the agents' updates and every hub message each reach a few
in-process readers (gaze follow, the display policy, the speaker); each of those must be
quick and must not stop the others when it raises, so that rule lives once, here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Listeners(Generic[T]):
    """Callables given each event of type ``T``; one that raises is logged and skipped."""

    __slots__ = ("_listeners", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        self._listeners: list[Callable[[T], object]] = []

    def append(self, listener: Callable[[T], object]) -> None:
        self._listeners.append(listener)

    def remove(self, listener: Callable[[T], object]) -> None:
        self._listeners.remove(listener)

    def __len__(self) -> int:
        return len(self._listeners)

    def __iter__(self) -> Iterator[Callable[[T], object]]:
        return iter(self._listeners)

    def __call__(self, event: T) -> None:
        """Give ``event`` to each listener in the order they were added."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("a %s listener failed", self._what)


__all__ = ["Listeners"]
