"""The interpreter's process-wide settings for a daemon whose event loop has a latency goal.

Owns: ``interpreter_ctx``, the last component to start (faced.app's list), which
sets how soon a thread waiting for the interpreter lock asks the holder to let go
(``sys.setswitchinterval``) and freezes what start-up allocated out of the cyclic
collector's reach (``gc.freeze``); when the process's last daemon cleans up both go back
to what they were (the tests run several daemons in one process, some at once). Does not
own any component's work, nor the figures (docs/performance.md, "Soak"; `faced bench
soak` times every collection and how long the loop waited for a CPU).

Why (docs/performance.md, "Soak", has the figures and how they were taken):

* the event loop shares the interpreter lock with the tracking thread (the pipeline's
  Python between its native calls), the capture and the analyze threads. A thread
  that wants the lock waits ``switchinterval`` (Python's default 5 ms) before it asks
  the holder to drop it: a probe thread's wait for the lock was p99 8 ms with 5 ms and
  2.3 ms with ``SWITCH_INTERVAL_S`` = 1 ms, and tracking kept its rate (30.0 against
  29.9 results/s, the two alternating in one process).
* a full (generation 2) collection walks every tracked object, and a started daemon
  holds ~60,000 of them, nearly all from start-up (modules, routes, the tracking models'
  wrappers): 30–105 ms per collection on the 2-core dev VM, a stall of the loop whichever
  thread it runs on (the collector holds the lock). Collected once and then frozen,
  start-up's objects are skipped: the same collection takes well under a millisecond.
  The price: a reference cycle among start-up's objects that only becomes garbage later
  is never collected (what is not in a cycle is still freed by its reference count).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

SWITCH_INTERVAL_S: Final = 0.001
"""How long a thread waits for the interpreter lock before it asks the holder to drop it."""


_daemons = 0  # started in this process and not yet cleaned up
_interval_before = 0.0


async def interpreter_ctx(app: web.Application) -> AsyncIterator[None]:
    """Once every component above has started: the switch interval, then start-up's
    garbage collected and the rest frozen. Undone when the last daemon of the process
    cleans up (tests run several at once)."""
    del app
    global _daemons, _interval_before  # noqa: PLW0603  (process-wide, as the settings)
    if not _daemons:
        _interval_before = sys.getswitchinterval()
    _daemons += 1
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # Start-up's garbage (cycles from imports, parsing the config) is collected first:
    # frozen, it would never be.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        _daemons -= 1
        if not _daemons:
            gc.unfreeze()
            sys.setswitchinterval(_interval_before)
